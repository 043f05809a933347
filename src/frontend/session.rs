//! The frontend's sessions: one per client connection, each with a bounded outbox, a kill switch
//! and the login the kernel last reported (for the hello after a kernel restart).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use crate::chat::{ChatError, Event, Login, SessionId};
use crate::wire::Upstream;

/// Bytes queued for one client before it counts as not reading and is dropped. One message
/// always fits in an empty queue, however large.
pub const OUTBOX_BYTES: usize = 1 << 20;
/// Lines and session changes waiting for the kernel link, across all clients. Past it a line is
/// answered `server busy` (a kernel restart is the usual cause).
pub const UPSTREAM: usize = 16384;

/// A rendered message for a client: telnet bytes or a WebSocket text.
pub trait Payload: Clone + Send + 'static {
    /// Bytes it takes in a queue.
    fn size(&self) -> usize;
}

impl Payload for bytes::Bytes {
    fn size(&self) -> usize {
        self.len()
    }
}

impl Payload for axum::extract::ws::Utf8Bytes {
    fn size(&self) -> usize {
        self.len()
    }
}

/// What a connection's writer is asked to do.
#[derive(Debug)]
pub enum Out<T> {
    /// Send this rendered message (or, on telnet, raw negotiation bytes).
    Send(T),
    /// Send everything queued before, then close: the user logged out.
    Close,
}

/// The sending side of a client's outbox, bounded in bytes.
#[derive(Clone)]
pub struct Outbox<T> {
    tx: mpsc::UnboundedSender<Out<T>>,
    queued: Arc<AtomicUsize>,
}

/// The receiving side, owned by the client's writer.
pub struct OutboxRx<T> {
    rx: mpsc::UnboundedReceiver<Out<T>>,
    queued: Arc<AtomicUsize>,
}

impl<T: Payload> Outbox<T> {
    fn new() -> (Self, OutboxRx<T>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                queued: queued.clone(),
            },
            OutboxRx { rx, queued },
        )
    }

    /// Queues a message; false if that would pass [`OUTBOX_BYTES`] (or the writer is gone).
    fn push(&self, message: T) -> bool {
        let size = message.size();
        let before = self.queued.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > OUTBOX_BYTES {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            return false;
        }
        self.tx.send(Out::Send(message)).is_ok()
    }

    fn close(&self) -> bool {
        self.tx.send(Out::Close).is_ok()
    }
}

impl<T: Payload> OutboxRx<T> {
    pub async fn recv(&mut self) -> Option<Out<T>> {
        let out = self.rx.recv().await;
        self.taken(&out);
        out
    }

    /// The next queued message if there is one, without waiting.
    pub fn try_recv(&mut self) -> Option<Out<T>> {
        let out = self.rx.try_recv().ok();
        self.taken(&out);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    fn taken(&self, out: &Option<Out<T>>) {
        if let Some(Out::Send(message)) = out {
            self.queued.fetch_sub(message.size(), Ordering::AcqRel);
        }
    }
}

struct Entry<T> {
    outbox: Outbox<T>,
    kill: CancellationToken,
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
    /// Cancelled when the client must be dropped (it stopped reading).
    pub kill: CancellationToken,
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
        let (outbox, rx) = Outbox::new();
        let kill = CancellationToken::new();
        let entry = Entry {
            outbox: outbox.clone(),
            kill: kill.clone(),
            login: None,
        };
        self.lock().insert(id, entry);
        // The link drains this queue even while the kernel is away, so this wait is short.
        let _ = self.upstream.send(Upstream::Open { session: id }).await;
        let session = Session {
            id,
            sessions: self,
            outbox,
            kill,
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
                drop_slow(*id, entry);
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
            drop_slow(*id, entry);
            false
        });
    }

    /// The kernel closes a session after `logout`.
    pub fn close(&self, id: SessionId) {
        let entries = self.lock();
        if let Some(entry) = entries.get(&id)
            && !entry.outbox.close()
        {
            entry.kill.cancel();
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

fn drop_slow<T>(id: SessionId, entry: &Entry<T>) {
    tracing::warn!(session = id, limit = OUTBOX_BYTES, "client is not reading; dropping it");
    entry.kill.cancel();
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
            tracing::warn!(
                session = self.id,
                limit = OUTBOX_BYTES,
                "client is not reading; dropping it"
            );
            self.kill.cancel();
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
