//! Where a frontend's clients left off, kept where the death of its process cannot take it: the
//! one owner of the state that carries a server's clients from one process to the next.
//!
//! Three things travel from a process to its successor, and this module alone reads and writes
//! the first two:
//! - the **position file** ([`file`]): shared memory the supervisor keeps per server; the process
//!   records, as it goes, the last kernel frame it handled and each client's progress (output
//!   written, input in hand, lines unacknowledged, its login). It survives a crash.
//! - the **carry** ([`carry`]): what each client's reader holds (its decoder's state and the input
//!   it decoded and has not handled), kept here as it changes ([`Journal::keep`]) and written out
//!   on a planned hand-over. Today it lives in the process until then, so a crash loses it and
//!   the position file says so; kept in shared memory instead, a crash would lose nothing read.
//! - the kernel's **replay** of the frames it sent the server (`kernel::hub::feed`), asked for by
//!   the new process's hello from where [`recover::resume_from`] says.
//!
//! A new process reconciles them with pure functions ([`recover`], [`replay`]): which frames sent
//! again reached which client already, what died of each client's input and what the client is
//! told, where the kernel is to resume. The supervisor only creates the position file and passes
//! descriptors on.

pub(crate) mod carry;
mod file;
pub(crate) mod recover;
mod replay;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

pub use carry::{Held, Part};
pub use file::{PositionFile, Slot};
pub use recover::{Counts, Input, Recovery, Start};
use replay::Floors;

use crate::chat::SessionId;

/// A frontend process's journal: its server's position file (if the supervisor gave one), the
/// slots of its clients in it, and what it learnt from the process before.
pub struct Journal {
    file: Option<Arc<PositionFile>>,
    /// Where the process before left off (kernel epoch, frame), read before this one records.
    left_off: Option<(u64, u64)>,
    slots: Mutex<Slots>,
    floors: Mutex<Floors>,
    /// Adopted clients whose latest line may have died with the process before, by the frame
    /// that carried it (0: none did). The kernel says which it applied.
    unsure: Mutex<HashMap<SessionId, u64>>,
    /// What each reader would leave on a hand-over now; only those with something to leave.
    carry: Mutex<HashMap<SessionId, Part>>,
}

/// Slot allocation: lowest first, so that the pages touched stay few.
struct Slots {
    /// Given back, to reuse first.
    free: Vec<u32>,
    /// Never given out yet from here on, but for the adopted clients' ones.
    fresh: u32,
    taken: HashSet<u32>,
}

impl Journal {
    /// The journal of a process that records in `file`; `taken` are the slots of the clients it
    /// adopts.
    pub fn new(file: Option<Arc<PositionFile>>, taken: &[u32]) -> Self {
        let left_off = file.as_ref().and_then(|f| f.position());
        let mut floors = Floors::default();
        if let Some((epoch, _)) = left_off {
            floors.of_epoch(epoch);
        }
        Self {
            file,
            left_off,
            slots: Mutex::new(Slots {
                free: Vec::new(),
                fresh: 0,
                taken: taken.iter().copied().collect(),
            }),
            floors: Mutex::new(floors),
            unsure: Mutex::new(HashMap::new()),
            carry: Mutex::new(HashMap::new()),
        }
    }

    /// A journal that records nothing (no supervisor keeps a position file).
    pub fn none() -> Self {
        Self::new(None, &[])
    }

    /// Where the process before left off: the last kernel frame it handled.
    pub fn left_off(&self) -> Option<(u64, u64)> {
        self.left_off
    }

    /// Kernel frame `seq` of kernel process `epoch` is handled.
    pub fn handled(&self, epoch: u64, seq: u64) {
        if let Some(file) = &self.file {
            file.set_position(epoch, seq);
        }
    }

    /// A slot for a new client, fresh.
    pub fn open(&self) -> Option<Slot> {
        let file = self.file.as_ref()?;
        let index = {
            let mut slots = self.slots.lock();
            match slots.free.pop() {
                Some(index) => index,
                None => {
                    loop {
                        let fresh = slots.fresh;
                        if !slots.taken.remove(&fresh) {
                            break;
                        }
                        slots.fresh += 1;
                    }
                    slots.fresh += 1;
                    slots.fresh - 1
                }
            }
        };
        let slot = Slot::new(file, index)?;
        slot.reset(0, None);
        Some(slot)
    }

    /// Client `id`'s session ended: its slot is free again, and it leaves nothing.
    pub fn close(&self, id: SessionId, slot: Option<&Slot>) {
        self.carry.lock().remove(&id);
        if let Some(slot) = slot {
            slot.reset(0, None);
            self.slots.lock().free.push(slot.index());
        }
    }

    /// Takes over client `id`, whom the process before recorded in slot `index`, its socket
    /// having seen `counts`: decides what became of it (see [`recover`]), remembers which frames
    /// sent again it skips and whether its latest line is in doubt, and starts its slot afresh
    /// from there.
    pub fn recover(&self, id: SessionId, index: u32, counts: Counts) -> (Option<Slot>, Recovery) {
        let slot = self.file.as_ref().and_then(|file| Slot::new(file, index));
        let left = slot.as_ref().map(Slot::left).unwrap_or_default();
        let position = self.left_off.map(|(_, seq)| seq);
        let recovery = recover::recover(&left, counts, position);
        tracing::debug!(session = id, ?left, ?counts, ?position, ?recovery, "adopting a client");
        if let Input::Unsure { line } = recovery.input {
            self.unsure.lock().insert(id, line);
        }
        if let Some(reached) = recovery.reached {
            self.floors.lock().reached(id, reached);
        }
        if let Some(slot) = &slot {
            slot.reset(recovery.reached.unwrap_or(0), recovery.login.as_ref());
        }
        (slot, recovery)
    }

    /// Which frames sent again reached which adopted client (held while delivering a frame).
    pub fn floors(&self) -> MutexGuard<'_, Floors> {
        self.floors.lock()
    }

    /// The clients whose latest line died with the process before, once the kernel says it
    /// applied that process's frames up to `applied` (asked once; later, none).
    pub fn lost_after(&self, applied: u64) -> Vec<SessionId> {
        let unsure = std::mem::take(&mut *self.unsure.lock());
        recover::lost_after(&unsure, applied)
    }

    /// What client `id`'s reader would leave on a hand-over now (`None`: nothing).
    pub fn keep(&self, id: SessionId, part: Option<Part>) {
        let mut carry = self.carry.lock();
        match part {
            Some(part) => carry.insert(id, part),
            None => carry.remove(&id),
        };
    }

    /// What every reader leaves, on the hand-over.
    pub fn carry(&self) -> HashMap<SessionId, Part> {
        std::mem::take(&mut *self.carry.lock())
    }
}
