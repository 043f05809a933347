//! Sessions across processes: registering the clients a previous process of this server left
//! (what became of each is the journal's decision, see [`crate::journal::recover`]), and this
//! process's own hand-over, which stops the readers and waits until nothing is in flight.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Record, Session, Sessions};
use crate::chat::SessionId;
use crate::frontend::outbox::{Outbox, OutboxRx, outbox};
use crate::journal::{Counts, Input, Part};

/// A client a previous process of this server left connected, registered and not yet served.
pub struct Adopted {
    pub id: SessionId,
    pub peer: SocketAddr,
    /// What became of its input when the previous process ended.
    pub input: Input,
    /// Whether its input is to be read.
    pub read: bool,
    /// Bytes read from its socket before this process.
    read_base: u64,
    /// What the previous process's reader left of it on a planned hand-over.
    pub carried: Option<Box<Part>>,
    outbox: Outbox,
    rx: OutboxRx,
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

impl Sessions {
    /// Registers a client a previous process of this server left connected, under its session
    /// id: the kernel knows it already (it says so, with its login, after the hello), so the
    /// kernel is not told and the client not greeted. Call it before the first hello.
    ///
    /// `slot` is where the previous process recorded its progress, `counts` what its socket
    /// says was ever written to it and read from it, and `carried` what that process's reader
    /// left of it, if it handed over. Returns the client with the last kernel frame that reached
    /// it (frames sent again up to it are not delivered to it twice).
    pub fn adopt(
        &self,
        id: SessionId,
        slot: u32,
        peer: SocketAddr,
        counts: Counts,
        carried: Option<Part>,
    ) -> (Adopted, Option<u64>) {
        self.next.fetch_max(id + 1, Ordering::Relaxed);
        let (slot, recovery) = self.journal.recover(id, slot, counts);
        let written = recovery.reached.unwrap_or(0);
        let (outbox, rx) = outbox(self.room.clone(), slot, written, counts.written.unwrap_or(0));
        outbox.heard(self.round.load(Ordering::Relaxed));
        let mut record = Record::new(outbox.clone(), peer);
        record.login = recovery.login;
        self.lock().insert(id, record);
        let adopted = Adopted {
            id,
            peer,
            input: recovery.input,
            read: true,
            read_base: counts.read.unwrap_or(0),
            carried: carried.map(Box::new),
            outbox,
            rx,
        };
        (adopted, recovery.reached)
    }

    /// Where the previous process of this server left off (kernel epoch, frame), if it did.
    pub fn left_off(&self) -> Option<(u64, u64)> {
        self.journal.left_off()
    }

    /// The handle on an adopted client's session.
    pub fn resume(&self, adopted: Adopted) -> (Session<'_>, OutboxRx) {
        let session = Session::new(adopted.id, adopted.peer, adopted.read_base, self, adopted.outbox);
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
            .all(|r| r.inflight == 0 && !r.busy && r.outbox.is_idle())
    }

    /// What the readers leave for the next process, by session.
    pub fn carry(&self) -> std::collections::HashMap<SessionId, Part> {
        self.journal.carry()
    }
}
