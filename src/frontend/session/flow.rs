//! Flow control of a frontend's sessions: lines on their way to the kernel (at most
//! [`MAX_INFLIGHT`] per client), a client whose output piles up (its own input waits; a broadcast
//! may make the kernel link wait for it, as [`HOLD_BACK`] and [`HOLD_SHARE`] allow), and WebSocket
//! liveness (one sweeping task pings the silent and drops the gone).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Session, Sessions};
use crate::chat::{ChatError, SessionId};
use crate::frontend::outbox::{Dropped, HoldBack};
use crate::wire::Upstream;

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

impl Sessions {
    /// Waits while clients that a broadcast put behind catch up, as [`HOLD_BACK`] and
    /// [`HOLD_SHARE`] allow. The kernel link calls this before taking more from the kernel, so a
    /// burst slows to the pace of the clients that read instead of piling up, while a client that
    /// does not read (or reads too slowly) costs the others little.
    pub async fn hold_back(&self) {
        loop {
            if self.behind.lock().is_empty() {
                return;
            }
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let now = Instant::now();
            let mut until: Option<Instant> = None;
            self.behind
                .lock()
                .retain(|outbox| match outbox.wait_until(now, HOLD_BACK) {
                    Some(at) => {
                        until = Some(until.map_or(at, |u| u.min(at)));
                        true
                    }
                    None => false,
                });
            let Some(until) = until else { return };
            let available = self.budget.lock().available(now);
            if available.is_zero() {
                return;
            }
            tokio::select! {
                _ = room => {}
                _ = tokio::time::sleep_until(until.min(now + available)) => {}
            }
            self.budget.lock().spend(now.elapsed());
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

    /// The kernel acknowledged a line of `id`: room for one more.
    pub fn acked(&self, id: SessionId) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.set_inflight(entry.inflight.saturating_sub(1));
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
}

/// Why a line must wait before it goes to the kernel.
pub enum Wait {
    /// The queue to the kernel is full (the line has its place among those in flight).
    Room(Upstream),
    /// The client has [`MAX_INFLIGHT`] lines unacknowledged.
    Inflight(Upstream),
}

impl Session<'_> {
    /// Forwards one input line to the kernel, waiting while this client has [`MAX_INFLIGHT`]
    /// lines unacknowledged or the queue is full. Returns `server busy` instead when the kernel
    /// is down and this line is past those bounds. The wait, rare, is boxed: an idle client's
    /// task stays small.
    pub async fn line(&self, line: String) -> Result<(), ChatError> {
        match self.line_now(line) {
            Ok(()) => Ok(()),
            Err(wait) => self.line_after(wait).await,
        }
    }

    /// Forwards a line after the wait [`line_now`](Self::line_now) said it needs.
    pub async fn line_after(&self, wait: Wait) -> Result<(), ChatError> {
        match wait {
            Wait::Room(message) => self.send(message).await,
            Wait::Inflight(message) => self.line_waiting(message).await,
        }
    }

    /// Forwards a line if that needs no wait (the usual case); otherwise says which wait it needs.
    /// Apart from [`line`](Self::line), so that the waits, rare, take no room in every
    /// connection's task.
    pub fn line_now(&self, line: String) -> Result<(), Wait> {
        let sessions = self.sessions;
        let message = Upstream::Line { session: self.id, line };
        let counted = match sessions.lock().get_mut(&self.id) {
            None => return Ok(()), // dropped meanwhile
            Some(entry) if entry.inflight < MAX_INFLIGHT => {
                entry.set_inflight(entry.inflight + 1);
                true
            }
            Some(_) => false,
        };
        if !counted {
            return Err(Wait::Inflight(message));
        }
        match sessions.upstream.try_send(message) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(message)) => Err(Wait::Room(message)),
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
                    entry.set_inflight(entry.inflight + 1);
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
                self.sessions.line_unsent(self.id);
                self.sessions.acks_done();
                Err(ChatError::ServerBusy)
            }
        }
    }

    /// Completes when the kernel is (or goes) down.
    async fn kernel_down(&self) {
        let mut kernel = self.sessions.kernel.subscribe();
        let _ = kernel.wait_for(|up| !*up).await;
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
}

#[cfg(test)]
mod tests {
    use super::super::{BEHIND_BYTES, UPSTREAM};
    use super::*;
    use crate::chat::Login;
    use std::net::SocketAddr;

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
        sessions.deliver_logged_in(&Bytes::from(vec![b'x'; BEHIND_BYTES + 1]), 1);
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
        sessions.deliver_logged_in(&Bytes::from(vec![b'y'; 10]), 2);
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
        sessions.deliver_logged_in(&Bytes::from(vec![b'z'; BEHIND_BYTES]), 3);
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
