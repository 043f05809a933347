//! The frontend's sessions: one per client connection, each with a bounded outbox and the login
//! the kernel last reported (for the hello after a kernel restart).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc::{self, error::TrySendError};

pub use super::outbox::{OUTBOX_BYTES, Payload};
use super::outbox::{Outbox, OutboxRx, outbox};

use crate::chat::{ChatError, Event, Login, SessionId};
use crate::wire::Upstream;

/// Lines and session changes waiting for the kernel link, across all clients. Past it a line is
/// answered `server busy` (a kernel restart is the usual cause).
pub const UPSTREAM: usize = 16384;

struct Entry<T> {
    outbox: Outbox<T>,
    login: Option<Login>,
}

/// Every live session of this frontend, and the sending half of the link to the kernel.
pub struct Sessions<T> {
    entries: Mutex<HashMap<SessionId, Entry<T>>>,
    next: AtomicU64,
    /// To the kernel link task, which owns the receiver and outlives every client.
    upstream: mpsc::Sender<Upstream>,
}

/// A client connection's handle on its session; closing it (on drop) tells the kernel.
pub struct Session<'a, T> {
    pub id: SessionId,
    sessions: &'a Sessions<T>,
    /// The client's own outbox, for replies the frontend makes itself (`line too long`).
    outbox: Outbox<T>,
}

impl<T: Payload> Sessions<T> {
    pub fn new(upstream: mpsc::Sender<Upstream>) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            upstream,
        }
    }

    /// Registers a new client and tells the kernel. Returns its handle and the outbox receiver.
    pub async fn open(&self) -> (Session<'_, T>, OutboxRx<T>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (outbox, rx) = outbox();
        let entry = Entry {
            outbox: outbox.clone(),
            login: None,
        };
        self.lock().insert(id, entry);
        // Waits only if the queue to the kernel is full (a long kernel outage under load): the new
        // client then waits here rather than being refused.
        let _ = self.upstream.send(Upstream::Open { session: id }).await;
        let session = Session {
            id,
            sessions: self,
            outbox,
        };
        (session, rx)
    }

    /// Delivers a rendered message to `to`; a client whose outbox is full is dropped.
    pub fn deliver(&self, to: &[SessionId], message: &T) {
        let mut entries = self.lock();
        for id in to {
            if let Some(entry) = entries.get(id)
                && !entry.outbox.push(message.clone())
            {
                slow(*id);
                entries.remove(id);
            }
        }
    }

    /// Delivers a rendered message to every logged-in session (a broadcast).
    pub fn deliver_logged_in(&self, message: &T) {
        self.lock().retain(|id, entry| {
            if entry.login.is_none() || entry.outbox.push(message.clone()) {
                return true;
            }
            slow(*id);
            false
        });
    }

    /// The kernel closes a session after `logout`.
    pub fn close(&self, id: SessionId) {
        if let Some(entry) = self.lock().get(&id) {
            entry.outbox.close();
        }
    }

    /// Mirrors the kernel's record of a session's login.
    pub fn set_login(&self, id: SessionId, login: Option<Login>) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.login = login;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Entry<T>>> {
        // A panic while holding the lock leaves the map consistent (every update is one call).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn slow(id: SessionId) {
    tracing::warn!(session = id, limit = OUTBOX_BYTES, "client is not reading; dropping it");
}

impl<T: Payload> Session<'_, T> {
    /// Forwards one input line to the kernel. Returns the error to show the client if the queue
    /// to the kernel is full.
    pub fn line(&self, line: String) -> Result<(), ChatError> {
        let message = Upstream::Line { session: self.id, line };
        match self.sessions.upstream.try_send(message) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(ChatError::ServerBusy),
            Err(TrySendError::Closed(_)) => Ok(()), // shutting down
        }
    }

    /// Queues a reply the frontend makes itself; a client that is not reading is dropped.
    pub fn reply(&self, message: T) {
        if !self.outbox.push(message) {
            slow(self.id);
        }
    }

    /// A reply rendered from an event, for errors the frontend detects itself.
    pub fn error(&self, error: ChatError, render: impl Fn(&Event) -> T) {
        self.reply(render(&Event::Error(error)));
    }
}

impl<T> Drop for Session<'_, T> {
    fn drop(&mut self) {
        let entries = &self.sessions.entries;
        entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
        let closed = Upstream::Closed { session: self.id };
        if let Err(TrySendError::Full(closed)) = self.sessions.upstream.try_send(closed) {
            // Never lose a close: the kernel would keep a ghost user. Finish it off the hot path.
            let upstream = self.sessions.upstream.clone();
            tokio::spawn(async move {
                let _ = upstream.send(closed).await;
            });
        }
    }
}
