//! The frontend's sessions: one per client connection, each with a bounded outbox, the login the
//! kernel last reported (for the hello after a kernel restart), and its lines on their way to the
//! kernel.
//!
//! Flow control, end to end ([`flow`]): a client may have [`MAX_INFLIGHT`] lines sent and not
//! yet acknowledged by the kernel; past that its reader waits (TCP then slows the client), so one
//! client's flood never sits in front of another's line. While the kernel is down, lines queue up
//! to that bound and past it are answered `server busy`; a kernel that is merely busy is never a
//! reason for `server busy`. Downstream, a client that falls behind makes the kernel link wait for
//! it a moment ([`Sessions::hold_back`]), which in turn slows the kernel and the senders.

mod flow;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::carry::Carried;
use super::client::End;
use super::handoff::Store;
use super::outbox::{Dropped, Outbox, OutboxRx, Pushed, outbox};
use crate::chat::{ChatError, Event, Login, SessionId};
use crate::handoff::state::{PENDING, Slot, State, UNACKED};
use crate::throttle::{TimeBudget, Warnings};
use crate::wire::Upstream;

pub use super::outbox::{BEHIND_BYTES, OUTBOX_BYTES};
pub use flow::{HOLD_BACK, HOLD_SHARE, MAX_INFLIGHT, Wait};

/// Messages waiting for the kernel link, across all clients.
pub const UPSTREAM: usize = 16384;

struct Entry {
    outbox: Outbox,
    login: Option<Login>,
    /// Lines sent to the kernel, not yet acknowledged.
    inflight: u32,
    /// Lines handed to the link and not yet numbered by it.
    unnumbered: u32,
    /// Its reader has input in hand (read, and not yet all handled or left to the next process).
    busy: bool,
    peer: SocketAddr,
}

impl Entry {
    /// A client's entry, not logged in, with nothing in flight.
    fn new(outbox: Outbox, peer: SocketAddr) -> Self {
        Self {
            outbox,
            login: None,
            inflight: 0,
            unnumbered: 0,
            busy: false,
            peer,
        }
    }

    fn set_inflight(&mut self, inflight: u32) {
        if let Some(slot) = self.outbox.slot() {
            if (self.inflight == 0) != (inflight == 0) {
                slot.set_input(UNACKED, inflight > 0);
            }
            if inflight > self.inflight {
                // A new line: no frame carries it yet.
                slot.set_line(0);
            }
        }
        if inflight > self.inflight {
            self.unnumbered += 1;
        }
        self.inflight = inflight;
    }
}

/// The position file (see [`crate::handoff::state`]) and its free slots.
struct Positions {
    state: Arc<State>,
    slots: Mutex<Slots>,
}

/// Slot allocation: lowest first, so that the pages touched stay few.
struct Slots {
    /// Given back, to reuse first.
    free: Vec<u32>,
    /// Never given out yet from here on, but for the adopted clients' ones.
    fresh: u32,
    taken: std::collections::HashSet<u32>,
}

/// For the clients adopted from a previous process, the number of the last kernel frame that
/// reached them: frames sent again up to it are not delivered to them twice. Numbers of one
/// kernel process, `epoch`: from another (the kernel restarted meanwhile) nothing is sent again.
#[derive(Default)]
struct Floors {
    of: HashMap<SessionId, u64>,
    highest: u64,
    epoch: u64,
}

/// Every live session of this frontend, and the sending half of the link to the kernel.
pub struct Sessions {
    entries: Mutex<HashMap<SessionId, Entry>>,
    next: AtomicU64,
    /// To the kernel link task, which owns the receiver and outlives every client.
    upstream: mpsc::Sender<Upstream>,
    /// Whether the kernel link is up; the link sets it.
    kernel: watch::Sender<bool>,
    /// Signalled when acknowledgements free room for clients' lines.
    acked: Notify,
    /// Signalled when a client that was behind catches up or is dropped.
    room: Arc<Notify>,
    /// Clients a broadcast put behind, for [`hold_back`](Self::hold_back).
    behind: Mutex<Vec<Outbox>>,
    /// The time [`hold_back`](Self::hold_back) may spend waiting.
    budget: Mutex<TimeBudget>,
    /// Limits the drop warnings (a mass drop must not flood the log).
    drops: Warnings,
    /// Limit the lines on clients coming, naming themselves and going, likewise.
    connects: Warnings,
    logins: Warnings,
    leaves: Warnings,
    /// Sent last to a client the kernel closes (a WebSocket close frame).
    goodbye: Option<Bytes>,
    /// Sent first to every client, as it connects (the server's `motd`).
    greeting: Option<Bytes>,
    /// The ping round (see [`sweep`](Self::sweep)).
    round: AtomicU32,
    /// Where copies of the connections are parked, when a supervisor keeps them.
    store: Option<Store>,
    /// Set when this process hands its clients over: nobody's input is read any more, and each
    /// reader leaves what it holds for the next process. (Read for every item a reader handles:
    /// an atomic, where the token that wakes the waiting readers takes a lock to ask.)
    handing_over: std::sync::atomic::AtomicBool,
    hand_over: tokio_util::sync::CancellationToken,
    /// What each client's reader leaves for the next process, should this one hand over (see
    /// [`carry`](super::carry)); only those with something to leave.
    carried: Mutex<HashMap<SessionId, Vec<u8>>>,
    positions: Option<Positions>,
    floors: Mutex<Floors>,
    /// Adopted clients whose latest line may have died with the previous process: the number of
    /// the frame that carried it (0: none did). The kernel says which it applied.
    unsure: Mutex<HashMap<SessionId, u64>>,
}

impl Adopted {
    /// Queues a message for the client, before anything else.
    pub fn tell(&self, message: Bytes) {
        self.outbox.push(message, false);
    }

    /// Sends `last` and closes, reading nothing more from it.
    pub fn close_with(&mut self, last: Bytes) {
        self.tell(last);
        self.outbox.close();
        self.read = false;
    }
}

/// A client a previous process of this server left connected, registered and not yet served.
pub struct Adopted {
    pub id: SessionId,
    pub peer: SocketAddr,
    /// What the previous process left of its input (see [`crate::handoff::state`]).
    pub input: u64,
    /// Whether its input is to be read.
    pub read: bool,
    /// Bytes read from its socket before this process.
    read_base: u64,
    /// What the previous process left of its reader on a planned hand-over.
    pub carried: Option<Box<Carried>>,
    outbox: Outbox,
    rx: OutboxRx,
}

/// A client connection's handle on its session; closing it (on drop) tells the kernel.
pub struct Session<'a> {
    pub id: SessionId,
    pub peer: SocketAddr,
    /// Bytes read from its socket before this process (by an earlier one).
    pub read_base: u64,
    sessions: &'a Sessions,
    /// The client's own outbox, for replies the frontend makes itself.
    outbox: Outbox,
}

impl Sessions {
    pub fn new(upstream: mpsc::Sender<Upstream>, goodbye: Option<Bytes>) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            upstream,
            kernel: watch::Sender::new(false),
            acked: Notify::new(),
            room: Arc::new(Notify::new()),
            behind: Mutex::new(Vec::new()),
            budget: Mutex::new(TimeBudget::new(HOLD_SHARE, HOLD_BACK.hold, Instant::now())),
            drops: Warnings::new(10, 50),
            connects: Warnings::new(10, 50),
            logins: Warnings::new(10, 50),
            leaves: Warnings::new(10, 50),
            goodbye,
            greeting: None,
            round: AtomicU32::new(0),
            store: None,
            handing_over: std::sync::atomic::AtomicBool::new(false),
            hand_over: tokio_util::sync::CancellationToken::new(),
            carried: Mutex::new(HashMap::new()),
            positions: None,
            floors: Mutex::new(Floors::default()),
            unsure: Mutex::new(HashMap::new()),
        }
    }

    /// The link numbered client `id`'s latest line as frame `frame`: recorded for the next
    /// process, should this one die before the kernel applies it.
    pub fn line_numbered(&self, id: SessionId, frame: u64) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.unnumbered = entry.unnumbered.saturating_sub(1);
            // Only once its latest line has a number: one read after this one has none yet.
            if entry.unnumbered == 0
                && let Some(slot) = entry.outbox.slot()
            {
                slot.set_line(frame);
            }
        }
    }

    /// A line handed to the link was not sent after all (the kernel went down meanwhile).
    fn line_unsent(&self, id: SessionId) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.unnumbered = entry.unnumbered.saturating_sub(1);
            let inflight = entry.inflight.saturating_sub(1);
            entry.set_inflight(inflight);
        }
    }

    /// The kernel applied the previous process's frames up to `applied`: each adopted client
    /// whose latest line came after (or never reached the kernel) is told it was lost.
    pub fn lines_lost_after(&self, applied: u64, notice: &Bytes) -> usize {
        let unsure = std::mem::take(&mut *self.unsure.lock());
        let lost: Vec<SessionId> = unsure
            .into_iter()
            .filter(|(_, frame)| *frame == 0 || *frame > applied)
            .map(|(id, _)| id)
            .collect();
        self.deliver(&lost, notice, 0);
        lost.len()
    }

    /// Records each client's progress in `state`; `taken` are the slots of adopted clients.
    pub fn positions(self, state: Option<Arc<State>>, taken: &[u32]) -> Self {
        let positions = state.map(|state| Positions {
            state,
            slots: Mutex::new(Slots {
                free: Vec::new(),
                fresh: 0,
                taken: taken.iter().copied().collect(),
            }),
        });
        Self { positions, ..self }
    }

    /// The adopted clients' floors (see [`adopt`](Self::adopt)) are numbers of kernel `epoch`.
    pub fn floors_of(&self, epoch: u64) {
        self.floors.lock().epoch = epoch;
    }

    /// The kernel numbers what follows as kernel `epoch`: floors of another kernel process mean
    /// nothing to it.
    pub fn numbered_by(&self, epoch: u64) {
        let mut floors = self.floors.lock();
        if floors.epoch != epoch && !floors.of.is_empty() {
            *floors = Floors::default();
        }
    }

    /// The kernel frame `seq` (of kernel `epoch`) is handled: recorded for the next process.
    pub fn handled(&self, epoch: u64, seq: u64) {
        if let Some(p) = &self.positions {
            p.state.set_position(epoch, seq);
        }
    }

    /// A free slot for a new client, reset.
    fn slot(&self) -> Option<Slot> {
        let p = self.positions.as_ref()?;
        let index = {
            let mut slots = p.slots.lock();
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
        let slot = Slot::new(&p.state, index)?;
        slot.reset(0);
        Some(slot)
    }

    fn free_slot(&self, slot: Option<&Slot>) {
        if let (Some(p), Some(slot)) = (&self.positions, slot) {
            slot.reset(0);
            p.slots.lock().free.push(slot.index());
        }
    }

    /// Whether kernel frame `seq` (0: none, a message of this process's own) already reached
    /// adopted client `id` (through the previous process).
    fn reached(floors: &Floors, id: SessionId, seq: u64) -> bool {
        seq > 0 && seq <= floors.highest && floors.of.get(&id).is_some_and(|floor| seq <= *floor)
    }

    /// Parks a copy of every client's connection in `store`.
    pub fn store(self, store: Option<Store>) -> Self {
        Self { store, ..self }
    }

    pub fn parking(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Registers a client a previous process of this server left connected, under its session
    /// id: the kernel knows it already (it says so, with its login, after the hello), so the
    /// kernel is not told and the client not greeted. Call it before the first hello.
    ///
    /// `slot` is where the previous process recorded its progress and `position` the last kernel
    /// frame that process handled. Returns the client with the last frame that reached it (every
    /// one up to `position`, unless some of its output was still unwritten): frames sent again
    /// up to that one are not delivered to it twice.
    ///
    /// `sent` and `read`: the bytes ever written to its socket and read from it, which tell
    /// whether a write or a read under way when the previous process died went through.
    /// `carried`: what the previous process left of its reader, if it handed over.
    pub fn adopt(
        &self,
        id: SessionId,
        slot: u32,
        peer: SocketAddr,
        position: Option<u64>,
        (sent, read): (Option<u64>, Option<u64>),
        carried: Option<&[u8]>,
    ) -> (Adopted, Option<u64>) {
        use crate::handoff::state::{HELD, PARTIAL};
        self.next.fetch_max(id + 1, Ordering::Relaxed);
        let slot = self.positions.as_ref().and_then(|p| Slot::new(&p.state, slot));
        let (output, mut input, line) = slot.as_ref().map_or((0, 0, 0), Slot::read);
        // Named in the hello: a kernel that restarted meanwhile knows it from nowhere else.
        let login = slot.as_ref().and_then(Slot::login);
        let (writing, write_end) = slot.as_ref().map_or((0, 0), Slot::was_writing);
        let was_reading = slot.as_ref().and_then(Slot::was_reading);
        if let Some(before) = was_reading
            && read.is_none_or(|read| read > before)
        {
            // It died just after a read, before it could record what it read: lost, and where
            // the next line starts is unknown.
            input |= HELD | PARTIAL;
        }
        tracing::debug!(
            session = id,
            output,
            input,
            line,
            writing,
            write_end,
            ?sent,
            ?read,
            ?was_reading,
            ?position,
            "adopting a client"
        );
        // Held or partial input is certainly lost, and its client told at once (see `tcp` and
        // `web`); lines sent and unacknowledged may have been applied: the kernel says.
        if input & UNACKED != 0 && input & (PARTIAL | HELD) == 0 {
            self.unsure.lock().insert(id, line);
        }
        let reached = if output & PENDING != 0 {
            let written = output & !PENDING;
            // A write under way at its death: done if the socket took every byte of it.
            let went_through = writing > written && sent.is_some_and(|sent| sent >= write_end);
            Some(if went_through { writing } else { written })
        } else {
            position
        };
        if let Some(slot) = &slot {
            slot.reset(reached.unwrap_or(0));
            slot.set_login(login.as_ref());
        }
        if let Some(reached) = reached {
            let mut floors = self.floors.lock();
            floors.of.insert(id, reached);
            floors.highest = floors.highest.max(reached);
        }
        let (outbox, rx) = outbox(self.room.clone(), slot, reached.unwrap_or(0), sent.unwrap_or(0));
        outbox.heard(self.round.load(Ordering::Relaxed));
        let mut entry = Entry::new(outbox.clone(), peer);
        entry.login = login;
        self.lock().insert(id, entry);
        let carried = carried.and_then(|part| {
            let parsed = super::carry::parse_part(part).map(Box::new);
            if parsed.is_none() {
                tracing::warn!(
                    session = id,
                    "what the previous process left of this client is unreadable"
                );
            }
            parsed
        });
        let adopted = Adopted {
            id,
            peer,
            input,
            read: true,
            read_base: read.unwrap_or(0),
            carried,
            outbox,
            rx,
        };
        (adopted, reached)
    }

    /// The handle on an adopted client's session.
    pub fn resume(&self, adopted: Adopted) -> (Session<'_>, OutboxRx) {
        let session = Session {
            id: adopted.id,
            peer: adopted.peer,
            read_base: adopted.read_base,
            sessions: self,
            outbox: adopted.outbox,
        };
        (session, adopted.rx)
    }

    /// Stops reading every client (a hand-over: what they send waits in their sockets for the
    /// next process, and each reader leaves what it holds).
    pub fn stop_reading(&self) {
        self.handing_over.store(true, Ordering::Release);
        self.hand_over.cancel();
    }

    /// Whether every line sent to the kernel is acknowledged, every outbox is written out and
    /// every reader has handled or left what it read.
    pub fn settled(&self) -> bool {
        self.lock()
            .values()
            .all(|e| e.inflight == 0 && !e.busy && e.outbox.is_idle())
    }

    /// What the readers left for the next process, by session (see [`carry`](super::carry)).
    pub fn carried(&self) -> HashMap<SessionId, Vec<u8>> {
        std::mem::take(&mut *self.carried.lock())
    }

    /// Greets every client with `greeting` as it connects.
    pub fn greeting(self, greeting: Option<Bytes>) -> Self {
        Self { greeting, ..self }
    }

    /// Registers a new client and tells the kernel. Returns its handle and the outbox receiver.
    /// The client loop opens in two steps (see `client::serve`); the tests, in one.
    #[cfg(test)]
    pub async fn open(&self, peer: SocketAddr) -> (Session<'_>, OutboxRx) {
        let (session, rx, announced) = self.open_now(peer);
        if !announced {
            self.announce(session.id).await;
        }
        (session, rx)
    }

    /// Registers a new client and tells the kernel if that needs no wait. Returns its handle, the
    /// outbox receiver, and false if the kernel is not told yet (its queue is full): then
    /// [`announce`](Self::announce) it before anything else of this session.
    pub fn open_now(&self, peer: SocketAddr) -> (Session<'_>, OutboxRx, bool) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (outbox, rx) = outbox(self.room.clone(), self.slot(), 0, 0);
        outbox.heard(self.round.load(Ordering::Relaxed));
        if let Some(greeting) = &self.greeting {
            // First in a new, empty outbox: before any reply, and it always fits.
            outbox.push(greeting.clone(), false);
        }
        self.lock().insert(id, Entry::new(outbox.clone(), peer));
        crate::info_limited!(self.connects, session = id, %peer, "client connected");
        let announced = match self.upstream.try_send(Upstream::Open { session: id }) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => false,
        };
        let session = Session {
            id,
            peer,
            read_base: 0,
            sessions: self,
            outbox,
        };
        (session, rx, announced)
    }

    /// Tells the kernel of a session [`open_now`](Self::open_now) could not: waits only if the
    /// queue to the kernel is full (a long kernel outage under load), so that the new client
    /// waits rather than being refused.
    pub async fn announce(&self, session: SessionId) {
        let _ = self.upstream.send(Upstream::Open { session }).await;
    }

    /// Delivers a rendered message, kernel frame `seq`, to `to` (replies and private messages: the
    /// link never waits for a client these put behind).
    pub fn deliver(&self, to: &[SessionId], message: &Bytes, seq: u64) {
        let floors = self.floors.lock();
        let mut entries = self.lock();
        for id in to {
            if Self::reached(&floors, *id, seq) {
                continue;
            }
            if let Some(entry) = entries.get(id) {
                let pushed = entry.outbox.push_numbered(message.clone(), false, seq);
                if !self.pushed(*id, entry, pushed) {
                    entries.remove(id);
                }
            }
        }
    }

    /// Delivers a rendered message, kernel frame `seq`, to every logged-in session (a broadcast).
    pub fn deliver_logged_in(&self, message: &Bytes, seq: u64) {
        let mut floors = self.floors.lock();
        if !floors.of.is_empty() && seq > floors.highest {
            // Past what any adopted client had: no more to skip.
            *floors = Floors::default();
        }
        self.lock().retain(|id, entry| {
            if entry.login.is_none() || Self::reached(&floors, *id, seq) {
                return true;
            }
            let pushed = entry.outbox.push_numbered(message.clone(), true, seq);
            self.pushed(*id, entry, pushed)
        });
    }

    /// Notes a client that fell behind and reports one that was dropped; false if it is gone.
    fn pushed(&self, id: SessionId, entry: &Entry, pushed: Pushed) -> bool {
        match pushed {
            Pushed::Queued => true,
            Pushed::Behind => {
                self.behind.lock().push(entry.outbox.clone());
                true
            }
            Pushed::Dropped => {
                self.log_drop(id, entry.peer, Dropped::Full);
                false
            }
            Pushed::Ignored => entry.outbox.dropped().is_none(),
        }
    }

    fn log_drop(&self, id: SessionId, peer: SocketAddr, why: Dropped) {
        crate::warn_limited!(self.drops, session = id, %peer, "dropped a client: {why}");
    }

    /// The kernel closes a session after `logout`.
    pub fn close(&self, id: SessionId) {
        if let Some(entry) = self.lock().get(&id) {
            if let Some(goodbye) = &self.goodbye {
                entry.outbox.push(goodbye.clone(), false);
            }
            entry.outbox.close();
        }
    }

    /// Mirrors the kernel's record of a session's login (in the position file too, for the next
    /// process), and logs a change of name.
    pub fn set_login(&self, id: SessionId, login: Option<Login>) {
        let (peer, was) = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(&id) else {
                return;
            };
            if entry.login != login
                && let Some(slot) = entry.outbox.slot()
            {
                slot.set_login(login.as_ref());
            }
            (entry.peer, std::mem::replace(&mut entry.login, login.clone()))
        };
        match (was, login) {
            (was, Some(now)) if was.as_ref().is_none_or(|was| was.name != now.name) => {
                crate::info_limited!(self.logins, session = id, %peer, name = %now.name, "login");
            }
            (Some(was), None) => crate::info_limited!(self.logins, session = id, %peer, name = %was.name, "logout"),
            _ => {}
        }
    }

    /// Every live session and its login, for the hello to a (re)started kernel.
    pub fn snapshot(&self) -> Vec<(SessionId, Option<Login>)> {
        let mut all: Vec<_> = self.lock().iter().map(|(id, e)| (*id, e.login.clone())).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.entries.lock()
    }
}

impl Session<'_> {
    /// Whether this process hands its clients over: it reads no more input.
    pub fn handing_over(&self) -> bool {
        self.sessions.handing_over.load(Ordering::Acquire)
    }

    /// Completes when this process begins to hand its clients over.
    pub async fn hand_over_begun(&self) {
        self.sessions.hand_over.cancelled().await
    }

    /// Leaves `part` (see [`carry`](super::carry)) for the next process, should this one hand
    /// over; `None`: nothing to leave.
    pub fn keep(&self, part: Option<Vec<u8>>) {
        let mut carried = self.sessions.carried.lock();
        match part {
            Some(part) => carried.insert(self.id, part),
            None => carried.remove(&self.id),
        };
    }

    /// Whether its reader has input in hand (a hand-over waits until none has).
    pub fn busy(&self, busy: bool) {
        if let Some(entry) = self.sessions.lock().get_mut(&self.id) {
            entry.busy = busy;
        }
    }

    /// Its slot in the position file ([`NO_SLOT`](crate::handoff::NO_SLOT): none).
    pub fn slot(&self) -> u32 {
        self.outbox.slot().map_or(crate::handoff::NO_SLOT, Slot::index)
    }

    /// Records, for the next process should this one die, that a read is under way, `before`
    /// bytes having been read from the socket ever (`None`: none is).
    pub fn reading(&self, before: Option<u64>) {
        if let Some(slot) = self.outbox.slot() {
            slot.set_reading(before);
        }
    }

    /// Records, for the next process should this one die, whether input read from the client
    /// is not yet all handed to the kernel (`held`: it would be lost) and whether it may end in
    /// the middle of a line (`partial`: the rest of that line is to be skipped).
    pub fn input_held(&self, held: bool, partial: bool) {
        use crate::handoff::state::{HELD, PARTIAL};
        if let Some(slot) = self.outbox.slot() {
            slot.set_input(HELD, held);
            slot.set_input(PARTIAL, partial);
        }
    }

    /// Queues a reply the frontend makes itself (an error, a telnet answer).
    pub fn reply(&self, message: Bytes) {
        let pushed = self.outbox.push(message, false);
        self.replied(pushed);
    }

    /// Queues a WebSocket pong, replacing one still unsent.
    pub fn pong(&self, pong: Bytes) {
        let pushed = self.outbox.push_pong(pong);
        self.replied(pushed);
    }

    fn replied(&self, pushed: Pushed) {
        if pushed == Pushed::Dropped {
            self.sessions.log_drop(self.id, self.peer, Dropped::Full);
        }
    }

    /// A reply rendered from an event, for errors the frontend detects itself.
    pub fn error(&self, error: ChatError, render: impl Fn(&Event) -> Bytes) {
        self.reply(render(&Event::Error(error)));
    }

    /// Closes the connection once what is queued is sent.
    pub fn close_after_output(&self) {
        self.outbox.close();
    }

    /// Logs how the connection ended, with the name it was logged in as; a drop was logged when
    /// it happened.
    pub fn ended(&self, end: &End) {
        if let End::Dropped(_) = end {
            return;
        }
        let name = self
            .sessions
            .lock()
            .get(&self.id)
            .and_then(|e| e.login.as_ref().map(|l| l.name.clone()));
        crate::info_limited!(
            self.sessions.leaves,
            session = self.id,
            peer = %self.peer,
            name = name.as_deref().map(tracing::field::display),
            "client disconnected: {end}"
        );
    }

    /// The writer found the client not reading; true if this call dropped it (log it then).
    pub fn drop_client(&self, why: Dropped) -> bool {
        let now = self.outbox.drop_client(why);
        if now {
            self.sessions.log_drop(self.id, self.peer, why);
        }
        now
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
        self.sessions.carried.lock().remove(&self.id);
        self.sessions.free_slot(self.outbox.slot());
        let closed = Upstream::Closed { session: self.id };
        if let Err(mpsc::error::TrySendError::Full(closed)) = self.sessions.upstream.try_send(closed) {
            // Never lose a close: the kernel would keep a ghost user. Finish it off the hot path.
            let upstream = self.sessions.upstream.clone();
            tokio::spawn(async move {
                let _ = upstream.send(closed).await;
            });
        }
    }
}
