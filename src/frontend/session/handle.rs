//! A client connection's handle on its session: replies the frontend makes itself, what its
//! reader records for the next process (through the journal), and the close, which tells the
//! kernel once however the connection ends.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Sessions;
use crate::chat::{ChatError, Event, SessionId};
use crate::frontend::client::End;
use crate::frontend::outbox::{Dropped, Outbox, Pushed};
use crate::journal::Part;
use crate::wire::Upstream;

/// A client connection's handle on its session; closing it (on drop) tells the kernel.
pub struct Session<'a> {
    pub id: SessionId,
    pub peer: SocketAddr,
    /// Bytes read from its socket before this process (by an earlier one).
    pub read_base: u64,
    pub(super) sessions: &'a Sessions,
    /// The client's own outbox, for replies the frontend makes itself.
    pub(super) outbox: Outbox,
}

impl<'a> Session<'a> {
    pub(super) fn new(id: SessionId, peer: SocketAddr, read_base: u64, sessions: &'a Sessions, outbox: Outbox) -> Self {
        Self {
            id,
            peer,
            read_base,
            sessions,
            outbox,
        }
    }

    /// Whether this process hands its clients over: it reads no more input.
    pub fn handing_over(&self) -> bool {
        self.sessions.handing_over.load(Ordering::Acquire)
    }

    /// Completes when this process begins to hand its clients over.
    pub async fn hand_over_begun(&self) {
        self.sessions.hand_over.cancelled().await
    }

    /// What its reader would leave the next process, should this one hand over (`None`:
    /// nothing).
    pub fn keep(&self, part: Option<Part>) {
        self.sessions.journal.keep(self.id, part);
    }

    /// Whether its reader has input in hand (a hand-over waits until none has).
    pub fn busy(&self, busy: bool) {
        if let Some(record) = self.sessions.lock().get_mut(&self.id) {
            record.busy = busy;
        }
    }

    /// Its slot in the position file ([`NO_SLOT`](crate::handoff::NO_SLOT): none).
    pub fn slot(&self) -> u32 {
        self.outbox
            .slot()
            .map_or(crate::handoff::NO_SLOT, crate::journal::Slot::index)
    }

    /// Records, for the next process should this one die, that a read is under way, `before`
    /// bytes having been read from the socket ever (`None`: none is).
    pub fn reading(&self, before: Option<u64>) {
        if let Some(slot) = self.outbox.slot() {
            slot.reading(before);
        }
    }

    /// Records, for the next process should this one die, whether input read from the client
    /// is not yet all handed to the kernel (`held`: it would be lost) and whether it may end in
    /// the middle of a line (`partial`: the rest of that line is to be skipped).
    pub fn input_held(&self, held: bool, partial: bool) {
        if let Some(slot) = self.outbox.slot() {
            slot.input(held, partial);
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
            .and_then(|r| r.login.as_ref().map(|l| l.name.clone()));
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
        self.sessions.journal.close(self.id, self.outbox.slot());
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
