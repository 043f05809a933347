//! A client's outgoing queue: bounded in bytes, drained a batch at a time by the client's writer,
//! holding no buffer while it is empty (an idle connection costs little), and knowing whether the
//! client's socket is taking bytes.
//!
//! Past [`BEHIND_BYTES`] a client is *behind*. Its own input then waits (see
//! [`client`](super::client)), so that no command of its own can grow its queue further; and if a
//! broadcast put it there, the kernel link waits for it a moment (see
//! [`Sessions::hold_back`](super::session::Sessions::hold_back)), so that a burst slows to the
//! pace of the clients that read instead of dropping them. Past [`OUTBOX_BYTES`] (what is queued
//! plus what the writer holds) the client is dropped, as is one whose socket accepts no byte for
//! `send_timeout` while output waits: a client counts as not reading only when its socket stops
//! taking bytes, never because this process is busy.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::journal::Slot;
use wake::Wake;

/// Bytes waiting for one client before it is dropped. One message always fits in an empty queue,
/// however large.
pub const OUTBOX_BYTES: usize = 1 << 20;
/// Bytes waiting past which a client is behind: the kernel link waits for it to catch up.
pub const BEHIND_BYTES: usize = 256 << 10;
/// A drained batch buffer larger than this is given back rather than kept for the next batch.
const KEEP_CAPACITY: usize = 16;

/// Why a client was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// More than [`OUTBOX_BYTES`] waited.
    Full,
    /// Its socket took no byte for `send_timeout` while output waited.
    SendTimeout(Duration),
    /// It sent nothing, not even a pong, for this long (WebSocket).
    Silent(Duration),
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Full => write!(f, "not reading: {} KiB of output waiting", OUTBOX_BYTES >> 10),
            Dropped::SendTimeout(d) => write!(f, "send timeout: its socket took no byte for {d:?}"),
            Dropped::Silent(d) => write!(f, "silent: no answer to pings for {d:?}"),
        }
    }
}

/// How long a link holds back for a client that fell behind.
#[derive(Debug, Clone, Copy)]
pub struct HoldBack {
    /// At most this long each time it falls behind.
    pub hold: Duration,
    /// Not once its socket has refused bytes this long: a reader with a full socket is back
    /// within that, a client that stopped reading is not.
    pub blocked: Duration,
}

/// What became of a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued, and this message, one the link may wait for, took the client past
    /// [`BEHIND_BYTES`] (reported once per time it falls behind).
    Behind,
    /// This message would pass [`OUTBOX_BYTES`]: the client is dropped now (reported once).
    Dropped,
    /// Not queued: the client was dropped earlier, or is closing.
    Ignored,
}

struct Queue {
    items: VecDeque<Bytes>,
    /// Bytes in `items`.
    queued: usize,
    /// Bytes handed to the writer and not yet written.
    writing: usize,
    /// Where in `items` an unsent pong waits: a newer ping's pong replaces it (RFC 6455 lets a
    /// server answer only the latest ping).
    pong: Option<usize>,
    /// Since when the socket has refused bytes, with output waiting.
    blocked_since: Option<Instant>,
    /// Since when more than [`BEHIND_BYTES`] have waited.
    behind_since: Option<Instant>,
    /// Close after what is queued (the user logged out, or the client said goodbye).
    close: bool,
    dropped: Option<Dropped>,
    /// Bytes ever queued, and ever written.
    pushed: u64,
    written: u64,
    /// For each kernel frame queued and not yet all written: where its bytes end (in `pushed`)
    /// and its number.
    marks: VecDeque<(u64, u64)>,
    /// The number of the last kernel frame all written.
    written_seq: u64,
    /// Bytes written to the socket before this outbox (by an earlier process).
    base: u64,
}

impl Queue {
    fn waiting(&self) -> usize {
        self.queued + self.writing
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// The ping round in which the client last sent something (see
    /// [`Sessions::sweep`](super::session::Sessions::sweep)).
    heard: AtomicU32,
    /// Wakes the writer; a wake with no writer waiting is kept for its next wait.
    wake: Wake,
    /// Wakes whoever waits for a client that was behind: shared by every outbox of a frontend.
    room: Arc<Notify>,
    /// Where how far its output is written is recorded for the next process, if anywhere.
    slot: Option<Slot>,
}

/// The pushing side; cheap to clone.
#[derive(Clone)]
pub struct Outbox(Arc<Shared>);

/// The writer's side.
pub struct OutboxRx(Arc<Shared>);

/// What the writer is to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send the batch it was handed.
    Send,
    /// Everything is sent; close the connection.
    Close,
    /// Drop the connection now.
    Dropped(Dropped),
}

/// A new, empty outbox; `room` is signalled when the client catches up after being behind.
///
/// `slot`, if any, is kept up to date with the number of the last kernel frame all written (see
/// [`push_numbered`](Outbox::push_numbered)) and whether more waits; it starts at `written_seq`.
/// `base`: the bytes an earlier process wrote to the socket.
pub fn outbox(room: Arc<Notify>, slot: Option<Slot>, written_seq: u64, base: u64) -> (Outbox, OutboxRx) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            queued: 0,
            writing: 0,
            pong: None,
            blocked_since: None,
            behind_since: None,
            close: false,
            dropped: None,
            pushed: 0,
            written: 0,
            marks: VecDeque::new(),
            written_seq,
            base,
        }),
        heard: AtomicU32::new(0),
        wake: Wake::default(),
        room,
        slot,
    });
    (Outbox(shared.clone()), OutboxRx(shared))
}

impl Outbox {
    /// Queues a message; `wait` says whether the link may wait for this client if this message
    /// puts it behind (broadcasts: yes; replies to its own commands: no, or a client could hold
    /// everyone up with commands whose answers it does not read).
    pub fn push(&self, message: Bytes, wait: bool) -> Pushed {
        self.push_with(message, wait, 0, Instant::now)
    }

    /// Queues the rendering of kernel frame number `seq` (see [`crate::journal`]).
    pub fn push_numbered(&self, message: Bytes, wait: bool, seq: u64) -> Pushed {
        self.push_with(message, wait, seq, Instant::now)
    }

    /// [`push`](Self::push), at `now`.
    #[cfg(test)]
    pub fn push_at(&self, message: Bytes, wait: bool, now: Instant) -> Pushed {
        self.push_with(message, wait, 0, || now)
    }

    /// The clock is read only when the client falls behind: a push is on the hot path of every
    /// delivery.
    fn push_with(&self, message: Bytes, wait: bool, seq: u64, now: impl FnOnce() -> Instant) -> Pushed {
        let mut queue = self.lock();
        let pushed = match Self::add(&mut queue, message, now) {
            Pushed::Behind if !wait => Pushed::Queued,
            other => other,
        };
        if seq > 0 && matches!(pushed, Pushed::Queued | Pushed::Behind) {
            let end = queue.pushed;
            queue.marks.push_back((end, seq));
            if queue.marks.len() == 1
                && let Some(slot) = &self.0.slot
            {
                slot.output(queue.written_seq, true);
            }
        }
        drop(queue);
        if pushed != Pushed::Ignored {
            self.0.wake.notify();
        }
        pushed
    }

    /// Queues a pong, replacing one that is still unsent.
    pub fn push_pong(&self, pong: Bytes) -> Pushed {
        let mut queue = self.lock();
        // Replacing bytes already counted would move the kernel frames' marks: only while none
        // waits (a pong and a broadcast rarely wait together).
        if let Some(at) = queue.pong.filter(|_| queue.marks.is_empty()) {
            let old = std::mem::replace(&mut queue.items[at], pong);
            queue.queued = queue.queued - old.len() + queue.items[at].len();
            return Pushed::Queued;
        }
        let pushed = match Self::add(&mut queue, pong, Instant::now) {
            Pushed::Behind => Pushed::Queued,
            other => other,
        };
        if pushed == Pushed::Queued {
            queue.pong = Some(queue.items.len() - 1);
        }
        drop(queue);
        self.0.wake.notify();
        pushed
    }

    fn add(queue: &mut Queue, message: Bytes, now: impl FnOnce() -> Instant) -> Pushed {
        if queue.dropped.is_some() || queue.close {
            return Pushed::Ignored;
        }
        let waiting = queue.waiting();
        if waiting > 0 && waiting + message.len() > OUTBOX_BYTES {
            Self::drop_queue(queue, Dropped::Full);
            return Pushed::Dropped;
        }
        queue.queued += message.len();
        queue.pushed += message.len() as u64;
        queue.items.push_back(message);
        if queue.behind_since.is_none() && queue.waiting() > BEHIND_BYTES {
            queue.behind_since = Some(now());
            return Pushed::Behind;
        }
        Pushed::Queued
    }

    fn drop_queue(queue: &mut Queue, why: Dropped) {
        queue.dropped = Some(why);
        queue.items = VecDeque::new();
        queue.queued = 0;
        queue.pong = None;
        queue.marks = VecDeque::new();
    }

    /// Drops the client now (true if this call did it).
    pub fn drop_client(&self, why: Dropped) -> bool {
        let mut queue = self.lock();
        if queue.dropped.is_some() {
            return false;
        }
        Self::drop_queue(&mut queue, why);
        drop(queue);
        self.0.wake.notify();
        self.0.room.notify_waiters();
        true
    }

    /// Closes the connection once everything queued is sent.
    pub fn close(&self) {
        self.lock().close = true;
        self.0.wake.notify();
    }

    /// Until when a link should wait for this client, if at all: while it is behind, for at most
    /// `hold` since it fell behind, and not once its socket has refused bytes for `blocked`.
    pub fn wait_until(&self, now: Instant, limits: HoldBack) -> Option<Instant> {
        let queue = self.lock();
        if queue.dropped.is_some() {
            return None;
        }
        let until = queue.behind_since? + limits.hold;
        let until = match queue.blocked_since {
            Some(blocked) => until.min(blocked + limits.blocked),
            None => until,
        };
        (now < until).then_some(until)
    }

    /// Whether more than [`BEHIND_BYTES`] wait.
    pub fn is_behind(&self) -> bool {
        self.lock().behind_since.is_some()
    }

    /// The client sent something in ping round `round`.
    pub fn heard(&self, round: u32) {
        self.0.heard.store(round, Ordering::Relaxed);
    }

    /// The ping round in which the client last sent something.
    pub fn last_heard(&self) -> u32 {
        self.0.heard.load(Ordering::Relaxed)
    }

    /// Why the client was dropped, if it was.
    /// Where this client's progress is recorded for the next process, if anywhere.
    pub fn slot(&self) -> Option<&Slot> {
        self.0.slot.as_ref()
    }

    pub fn is_idle(&self) -> bool {
        self.lock().waiting() == 0
    }

    pub fn dropped(&self) -> Option<Dropped> {
        self.lock().dropped
    }

    /// Bytes waiting: queued and being written.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.lock().waiting()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Queue> {
        self.0.queue.lock()
    }
}

mod wake;
mod writer;

#[cfg(test)]
mod tests;
