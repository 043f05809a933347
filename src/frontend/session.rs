//! The frontend's sessions: one per client connection, each with a bounded outbox, the login the
//! kernel last reported (for the hello after a kernel restart), and its lines on their way to the
//! kernel.
//!
//! Flow control, end to end: a client may have [`MAX_INFLIGHT`] lines sent and not yet
//! acknowledged by the kernel; past that its reader waits (TCP then slows the client), so one
//! client's flood never sits in front of another's line. While the kernel is down, lines queue up
//! to that bound and past it are answered `server busy`; a kernel that is merely busy is never a
//! reason for `server busy`. Downstream, a client that falls behind makes the kernel link wait for
//! it a moment ([`Sessions::hold_back`]), which in turn slows the kernel and the senders.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::client::End;
use super::outbox::{Dropped, HoldBack, Outbox, OutboxRx, Pushed, outbox};
use crate::chat::{ChatError, Event, Login, SessionId};
use crate::throttle::{TimeBudget, Warnings};
use crate::wire::Upstream;

pub use super::outbox::{BEHIND_BYTES, OUTBOX_BYTES};

/// Messages waiting for the kernel link, across all clients.
pub const UPSTREAM: usize = 16384;
/// Lines of one client sent to the kernel and not yet acknowledged.
pub const MAX_INFLIGHT: u32 = 64;
/// How long the kernel link waits for a client that a broadcast put behind: at most a second each
/// time it falls behind, and not once its socket has taken nothing for 100 ms (a reader with a
/// full socket is back within that, a client that stopped reading is not).
pub const HOLD_BACK: HoldBack = HoldBack {
    hold: Duration::from_secs(1),
    blocked: Duration::from_millis(100),
};
/// Of every second, the link spends at most this share waiting for clients behind (with up to
/// [`HOLD_BACK`]'s `hold` at once): however many slow readers there are, the others get at least
/// three quarters of the time.
pub const HOLD_SHARE: f64 = 0.25;

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

    /// Waits while clients that a broadcast put behind catch up, as [`HOLD_BACK`] and
    /// [`HOLD_SHARE`] allow. The kernel link calls this before taking more from the kernel, so a
    /// burst slows to the pace of the clients that read instead of piling up, while a client that
    /// does not read (or reads too slowly) costs the others little.
    pub async fn hold_back(&self) {
        loop {
            if lock(&self.behind).is_empty() {
                return;
            }
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let now = Instant::now();
            let mut until: Option<Instant> = None;
            lock(&self.behind).retain(|outbox| match outbox.wait_until(now, HOLD_BACK) {
                Some(at) => {
                    until = Some(until.map_or(at, |u| u.min(at)));
                    true
                }
                None => false,
            });
            let Some(until) = until else { return };
            let available = lock(&self.budget).available(now);
            if available.is_zero() {
                return;
            }
            tokio::select! {
                _ = room => {}
                _ = tokio::time::sleep_until(until.min(now + available)) => {}
            }
            lock(&self.budget).spend(now.elapsed());
        }
    }

    /// Pings clients that said nothing for a while and drops those that answer nothing, forever:
    /// every `interval` a round ends; a client silent for a whole round is sent `ping`, one silent
    /// for three rounds is dropped. One task for all clients, so that an idle connection carries
    /// no timer of its own.
    pub async fn sweep(&self, ping: Bytes, interval: Duration) {
        let mut rounds = tokio::time::interval_at(Instant::now() + interval, interval);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            rounds.tick().await;
            let round = self.round.fetch_add(1, Ordering::Relaxed) + 1;
            let mut silent = Vec::new();
            self.lock()
                .retain(|id, entry| match round.wrapping_sub(entry.outbox.last_heard()) {
                    0 | 1 => true,
                    2 => {
                        let pushed = entry.outbox.push(ping.clone(), false);
                        self.pushed(*id, entry, pushed)
                    }
                    _ => {
                        silent.push((*id, entry.peer));
                        entry.outbox.drop_client(Dropped::Silent(interval * 2));
                        false
                    }
                });
            for (id, peer) in silent {
                self.log_drop(id, peer, Dropped::Silent(interval * 2));
            }
        }
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

    /// The kernel acknowledged a line of `id`: room for one more.
    pub fn acked(&self, id: SessionId) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.inflight = entry.inflight.saturating_sub(1);
        }
    }

    /// Wakes the readers waiting for room, after a round of acknowledgements.
    pub fn acks_done(&self) {
        self.acked.notify_waiters();
    }

    /// The link tells whether the kernel is up (connected and answering).
    pub fn set_kernel(&self, up: bool) {
        self.kernel.send_if_modified(|state| std::mem::replace(state, up) != up);
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
    /// Forwards one input line to the kernel, waiting while this client has [`MAX_INFLIGHT`]
    /// lines unacknowledged or the queue is full. Returns `server busy` instead when the kernel
    /// is down and this line is past those bounds. The wait, rare, is boxed: an idle client's
    /// task stays small.
    pub async fn line(&self, line: String) -> Result<(), ChatError> {
        let sessions = self.sessions;
        let message = Upstream::Line { session: self.id, line };
        let counted = match sessions.lock().get_mut(&self.id) {
            None => return Ok(()), // dropped meanwhile
            Some(entry) if entry.inflight < MAX_INFLIGHT => {
                entry.inflight += 1;
                true
            }
            Some(_) => false,
        };
        if counted {
            match sessions.upstream.try_send(message) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
                Err(mpsc::error::TrySendError::Full(message)) => Box::pin(self.send(message)).await,
            }
        } else {
            Box::pin(self.line_waiting(message)).await
        }
    }

    /// A line waiting for room among this client's lines in flight.
    async fn line_waiting(&self, message: Upstream) -> Result<(), ChatError> {
        let sessions = self.sessions;
        loop {
            let acked = sessions.acked.notified();
            tokio::pin!(acked);
            acked.as_mut().enable();
            let room = match sessions.lock().get_mut(&self.id) {
                None => return Ok(()),
                Some(entry) if entry.inflight < MAX_INFLIGHT => {
                    entry.inflight += 1;
                    true
                }
                Some(_) => false,
            };
            if room {
                return self.send(message).await;
            }
            if !*sessions.kernel.borrow() {
                return Err(ChatError::ServerBusy);
            }
            tokio::select! {
                _ = acked => {}
                _ = self.kernel_down() => return Err(ChatError::ServerBusy),
            }
        }
    }

    /// Sends a line that has its place among the in-flight ones.
    async fn send(&self, message: Upstream) -> Result<(), ChatError> {
        let message = match self.sessions.upstream.try_send(message) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(message)) => message,
        };
        tokio::select! {
            permit = self.sessions.upstream.reserve() => {
                if let Ok(permit) = permit {
                    permit.send(message);
                }
                Ok(())
            }
            _ = self.kernel_down() => {
                self.sessions.acked(self.id);
                Err(ChatError::ServerBusy)
            }
        }
    }

    /// Completes when the kernel is (or goes) down.
    async fn kernel_down(&self) {
        let mut kernel = self.sessions.kernel.subscribe();
        let _ = kernel.wait_for(|up| !*up).await;
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

    /// The client sent something: it is alive.
    pub fn heard(&self) {
        self.outbox.heard(self.sessions.round.load(Ordering::Relaxed));
    }

    /// Whether more than [`BEHIND_BYTES`] of output wait for this client.
    pub fn is_behind(&self) -> bool {
        self.outbox.is_behind()
    }

    /// Waits while this client is behind (more than [`BEHIND_BYTES`] of output wait for it): its
    /// commands are not read meanwhile, so no command of its own can grow its queue further.
    pub async fn caught_up(&self) {
        loop {
            let room = self.sessions.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if !self.outbox.is_behind() || self.outbox.dropped().is_some() {
                return;
            }
            room.await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn lines_past_the_inflight_bound_wait_for_acks_or_are_busy_while_the_kernel_is_down() {
        let (tx, mut rx) = mpsc::channel(UPSTREAM);
        let sessions = Sessions::new(tx, None);
        let (session, _out) = sessions.open(peer()).await;
        assert!(matches!(rx.recv().await, Some(Upstream::Open { .. })));
        // Kernel down: the bound's worth queue, the next is busy.
        for i in 0..MAX_INFLIGHT {
            assert_eq!(session.line(format!("l{i}")).await, Ok(()));
        }
        assert_eq!(session.line("over".into()).await, Err(ChatError::ServerBusy));
        // Kernel up: the next waits until an acknowledgement makes room.
        sessions.set_kernel(true);
        let waiting = session.line("waits".into());
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), waiting.as_mut())
                .await
                .is_err(),
            "a busy kernel slows the reader, it does not refuse"
        );
        sessions.acked(session.id);
        sessions.acks_done();
        assert_eq!(waiting.await, Ok(()));
        // And if the kernel goes down while it waits, it is busy.
        let waiting = session.line("then".into());
        tokio::pin!(waiting);
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        sessions.set_kernel(false);
        assert_eq!(waiting.await, Err(ChatError::ServerBusy));
        let mut queued = 0;
        while let Ok(Upstream::Line { .. }) = rx.try_recv() {
            queued += 1;
        }
        assert_eq!(queued, MAX_INFLIGHT + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_link_waits_for_a_client_behind_but_not_for_a_shut_socket_nor_too_long() {
        let (tx, _rx) = mpsc::channel(UPSTREAM);
        let sessions = Sessions::new(tx, None);
        let mut clients = Vec::new();
        for i in 0..3 {
            let (session, out) = sessions.open(peer()).await;
            sessions.set_login(
                session.id,
                Some(Login {
                    name: format!("c{i}"),
                    seq: i,
                }),
            );
            clients.push((session, out));
        }
        sessions.deliver_logged_in(&Bytes::from(vec![b'x'; BEHIND_BYTES + 1]));
        let mut batches: Vec<_> = clients.iter().map(|_| std::collections::VecDeque::new()).collect();
        for ((_, out), batch) in clients.iter_mut().zip(&mut batches) {
            out.next(batch).await;
        }
        // Shut sockets: waited for 100 ms.
        for (_, out) in &clients {
            out.blocked(Instant::now());
        }
        let started = Instant::now();
        sessions.hold_back().await;
        assert_eq!(started.elapsed(), HOLD_BACK.blocked);
        // Others fall behind, their sockets taking bytes slowly: waited for, as long as the
        // share of time allows.
        let mut slow = Vec::new();
        for i in 3..6 {
            let (session, mut out) = sessions.open(peer()).await;
            sessions.set_login(
                session.id,
                Some(Login {
                    name: format!("c{i}"),
                    seq: i,
                }),
            );
            session.outbox.push(Bytes::from(vec![b'y'; BEHIND_BYTES]), false);
            let mut batch = std::collections::VecDeque::new();
            out.next(&mut batch).await;
            slow.push((session, out));
        }
        sessions.deliver_logged_in(&Bytes::from(vec![b'y'; 10]));
        for (_, out) in &slow {
            out.sent(1);
        }
        let started = Instant::now();
        sessions.hold_back().await;
        let held = started.elapsed();
        assert!(held >= Duration::from_millis(800) && held <= HOLD_BACK.hold, "{held:?}");
        assert!(
            clients.iter().chain(&slow).all(|(s, _)| s.outbox.dropped().is_none()),
            "nobody dropped"
        );
        // The budget is spent: for a while the link does not wait at all.
        sessions.deliver_logged_in(&Bytes::from(vec![b'z'; BEHIND_BYTES]));
        let started = Instant::now();
        sessions.hold_back().await;
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_behind_on_its_own_replies_waits_and_holds_nobody_up() {
        let (tx, _rx) = mpsc::channel(UPSTREAM);
        let sessions = Sessions::new(tx, None);
        let (session, mut out) = sessions.open(peer()).await;
        session.reply(Bytes::from(vec![b'u'; BEHIND_BYTES + 1]));
        let started = Instant::now();
        sessions.hold_back().await;
        assert_eq!(started.elapsed(), Duration::ZERO, "the link does not wait for it");
        let waiting = session.caught_up();
        tokio::pin!(waiting);
        assert!(
            futures_util::poll!(waiting.as_mut()).is_pending(),
            "its own input waits"
        );
        let mut batch = std::collections::VecDeque::new();
        out.next(&mut batch).await;
        out.sent(BEHIND_BYTES);
        waiting.await;
    }
}
