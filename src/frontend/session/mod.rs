//! The frontend's sessions: one per client connection, each with a bounded outbox, the login the
//! kernel last reported (for the hello after a kernel restart), and its lines on their way to the
//! kernel. The table itself is here; around it:
//!
//! - [`flow`]: a client's lines on their way to the kernel (at most [`MAX_INFLIGHT`] unacknowledged),
//!   the kernel link waiting for clients a broadcast put behind, WebSocket liveness;
//! - [`deliver`]: the kernel's events into the outboxes, drops, logins and closes;
//! - [`handle`]: a connection's handle on its session ([`Session`]);
//! - [`adopt`]: clients a previous process left, and this process's own hand-over.
//!
//! What must outlive this process (where each client got to, what its reader holds) is recorded
//! through the [`Journal`], never here.

mod adopt;
mod deliver;
mod flow;
mod handle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::handoff::Store;
use super::outbox::{Outbox, OutboxRx, outbox};
use crate::chat::{Login, SessionId};
use crate::journal::Journal;
use crate::throttle::{TimeBudget, Warnings};
use crate::wire::Upstream;

pub use super::outbox::{BEHIND_BYTES, OUTBOX_BYTES};
pub use adopt::Adopted;
pub use flow::{HOLD_BACK, HOLD_SHARE, MAX_INFLIGHT, Wait};
pub use handle::Session;

/// Messages waiting for the kernel link, across all clients.
pub const UPSTREAM: usize = 16384;

/// One session as this frontend tracks it.
struct Record {
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

impl Record {
    /// A client's record, not logged in, with nothing in flight.
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
        let more = inflight > self.inflight;
        if let Some(slot) = self.outbox.slot() {
            if (self.inflight == 0) != (inflight == 0) {
                slot.unacked(inflight > 0);
            }
            if more {
                // A new line: no frame carries it yet.
                slot.line(0);
            }
        }
        if more {
            self.unnumbered += 1;
        }
        self.inflight = inflight;
    }
}

/// Every live session of this frontend, and the sending half of the link to the kernel.
pub struct Sessions {
    records: Mutex<HashMap<SessionId, Record>>,
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
    handing_over: AtomicBool,
    hand_over: CancellationToken,
    journal: Journal,
}

impl Sessions {
    pub fn new(upstream: mpsc::Sender<Upstream>, goodbye: Option<Bytes>) -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
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
            handing_over: AtomicBool::new(false),
            hand_over: CancellationToken::new(),
            journal: Journal::none(),
        }
    }

    /// Greets every client with `greeting` as it connects.
    pub fn greeting(self, greeting: Option<Bytes>) -> Self {
        Self { greeting, ..self }
    }

    /// Parks a copy of every client's connection in `store`.
    pub fn store(self, store: Option<Store>) -> Self {
        Self { store, ..self }
    }

    /// Records where each client got to, for the next process, in `journal`.
    pub fn journal(self, journal: Journal) -> Self {
        Self { journal, ..self }
    }

    pub fn parking(&self) -> Option<&Store> {
        self.store.as_ref()
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
        let (outbox, rx) = outbox(self.room.clone(), self.journal.open(), 0, 0);
        outbox.heard(self.round.load(Ordering::Relaxed));
        if let Some(greeting) = &self.greeting {
            // First in a new, empty outbox: before any reply, and it always fits.
            outbox.push(greeting.clone(), false);
        }
        self.lock().insert(id, Record::new(outbox.clone(), peer));
        crate::info_limited!(self.connects, session = id, %peer, "client connected");
        let announced = match self.upstream.try_send(Upstream::Open { session: id }) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => false,
        };
        let session = Session::new(id, peer, 0, self, outbox);
        (session, rx, announced)
    }

    /// Tells the kernel of a session [`open_now`](Self::open_now) could not: waits only if the
    /// queue to the kernel is full (a long kernel outage under load), so that the new client
    /// waits rather than being refused.
    pub async fn announce(&self, session: SessionId) {
        let _ = self.upstream.send(Upstream::Open { session }).await;
    }

    /// Every live session and its login, for the hello to a (re)started kernel.
    pub fn snapshot(&self) -> Vec<(SessionId, Option<Login>)> {
        let mut all: Vec<_> = self.lock().iter().map(|(id, r)| (*id, r.login.clone())).collect();
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

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Record>> {
        self.records.lock()
    }
}

#[cfg(test)]
mod tests;
