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
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::client::End;
use super::outbox::{Dropped, Outbox, OutboxRx, Pushed, outbox};
use crate::chat::{ChatError, Event, Login, SessionId};
use crate::throttle::{TimeBudget, Warnings};
use crate::wire::Upstream;

pub use super::outbox::{BEHIND_BYTES, OUTBOX_BYTES};
pub use flow::{HOLD_BACK, HOLD_SHARE, MAX_INFLIGHT};

/// Messages waiting for the kernel link, across all clients.
pub const UPSTREAM: usize = 16384;

struct Entry {
    outbox: Outbox,
    login: Option<Login>,
    /// Lines sent to the kernel, not yet acknowledged.
    inflight: u32,
    peer: SocketAddr,
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
}

/// A client connection's handle on its session; closing it (on drop) tells the kernel.
pub struct Session<'a> {
    pub id: SessionId,
    pub peer: SocketAddr,
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
        }
    }

    /// Greets every client with `greeting` as it connects.
    pub fn greeting(self, greeting: Option<Bytes>) -> Self {
        Self { greeting, ..self }
    }

    /// Registers a new client and tells the kernel. Returns its handle and the outbox receiver.
    pub async fn open(&self, peer: SocketAddr) -> (Session<'_>, OutboxRx) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (outbox, rx) = outbox(self.room.clone());
        outbox.heard(self.round.load(Ordering::Relaxed));
        if let Some(greeting) = &self.greeting {
            // First in a new, empty outbox: before any reply, and it always fits.
            outbox.push(greeting.clone(), false);
        }
        let entry = Entry {
            outbox: outbox.clone(),
            login: None,
            inflight: 0,
            peer,
        };
        self.lock().insert(id, entry);
        crate::info_limited!(self.connects, session = id, %peer, "client connected");
        // Waits only if the queue to the kernel is full (a long kernel outage under load): the new
        // client then waits here rather than being refused.
        let _ = self.upstream.send(Upstream::Open { session: id }).await;
        let session = Session {
            id,
            peer,
            sessions: self,
            outbox,
        };
        (session, rx)
    }

    /// Delivers a rendered message to `to` (replies and private messages: the link never waits
    /// for a client these put behind).
    pub fn deliver(&self, to: &[SessionId], message: &Bytes) {
        let mut entries = self.lock();
        for id in to {
            if let Some(entry) = entries.get(id) {
                let pushed = entry.outbox.push(message.clone(), false);
                if !self.pushed(*id, entry, pushed) {
                    entries.remove(id);
                }
            }
        }
    }

    /// Delivers a rendered message to every logged-in session (a broadcast).
    pub fn deliver_logged_in(&self, message: &Bytes) {
        self.lock().retain(|id, entry| {
            if entry.login.is_none() {
                return true;
            }
            let pushed = entry.outbox.push(message.clone(), true);
            self.pushed(*id, entry, pushed)
        });
    }

    /// Notes a client that fell behind and reports one that was dropped; false if it is gone.
    fn pushed(&self, id: SessionId, entry: &Entry, pushed: Pushed) -> bool {
        match pushed {
            Pushed::Queued => true,
            Pushed::Behind => {
                lock(&self.behind).push(entry.outbox.clone());
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

    /// Mirrors the kernel's record of a session's login, and logs a change of name.
    pub fn set_login(&self, id: SessionId, login: Option<Login>) {
        let (peer, was) = {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(&id) else {
                return;
            };
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Entry>> {
        lock(&self.entries)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a lock leaves the data consistent (every update is one call).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session<'_> {
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
