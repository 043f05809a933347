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
                .retain(|id, record| match round.wrapping_sub(record.outbox.last_heard()) {
                    0 | 1 => true,
                    2 => {
                        let pushed = record.outbox.push(ping.clone(), false);
                        self.pushed(*id, record, pushed)
                    }
                    _ => {
                        silent.push((*id, record.peer));
                        record.outbox.drop_client(Dropped::Silent(interval * 2));
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
        if let Some(record) = self.lock().get_mut(&id) {
            record.set_inflight(record.inflight.saturating_sub(1));
        }
    }

    /// A line handed to the link was not sent after all (the kernel went down meanwhile).
    fn line_unsent(&self, id: SessionId) {
        if let Some(record) = self.lock().get_mut(&id) {
            record.unnumbered = record.unnumbered.saturating_sub(1);
            let inflight = record.inflight.saturating_sub(1);
            record.set_inflight(inflight);
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
            Some(record) if record.inflight < MAX_INFLIGHT => {
                record.set_inflight(record.inflight + 1);
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
                Some(record) if record.inflight < MAX_INFLIGHT => {
                    record.set_inflight(record.inflight + 1);
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
