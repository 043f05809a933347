//! What the kernel link tells the sessions: each frame's messages into the outboxes (each adopted
//! client skipping what reached it through the previous process), logins and closes, and the
//! numbers that the journal records for the next process.

use bytes::Bytes;

use super::{Record, Sessions};
use crate::chat::{Login, SessionId};
use crate::frontend::outbox::{Dropped, Pushed};

impl Sessions {
    /// Delivers a rendered message, kernel frame `seq`, to `to` (replies and private messages: the
    /// link never waits for a client these put behind).
    pub fn deliver(&self, to: &[SessionId], message: &Bytes, seq: u64) {
        let floors = self.journal.floors();
        let mut records = self.lock();
        for id in to {
            if floors.skip(*id, seq) {
                continue;
            }
            if let Some(record) = records.get(id) {
                let pushed = record.outbox.push_numbered(message.clone(), false, seq);
                if !self.pushed(*id, record, pushed) {
                    records.remove(id);
                }
            }
        }
    }

    /// Delivers a rendered message, kernel frame `seq`, to every logged-in session (a broadcast).
    pub fn deliver_logged_in(&self, message: &Bytes, seq: u64) {
        let mut floors = self.journal.floors();
        floors.passed(seq);
        self.lock().retain(|id, record| {
            if record.login.is_none() || floors.skip(*id, seq) {
                return true;
            }
            let pushed = record.outbox.push_numbered(message.clone(), true, seq);
            self.pushed(*id, record, pushed)
        });
    }

    /// Notes a client that fell behind and reports one that was dropped; false if it is gone.
    pub(super) fn pushed(&self, id: SessionId, record: &Record, pushed: Pushed) -> bool {
        match pushed {
            Pushed::Queued => true,
            Pushed::Behind => {
                self.behind.lock().push(record.outbox.clone());
                true
            }
            Pushed::Dropped => {
                self.log_drop(id, record.peer, Dropped::Full);
                false
            }
            Pushed::Ignored => record.outbox.dropped().is_none(),
        }
    }

    pub(super) fn log_drop(&self, id: SessionId, peer: std::net::SocketAddr, why: Dropped) {
        crate::warn_limited!(self.drops, session = id, %peer, "dropped a client: {why}");
    }

    /// The kernel closes a session after `logout`.
    pub fn close(&self, id: SessionId) {
        if let Some(record) = self.lock().get(&id) {
            if let Some(goodbye) = &self.goodbye {
                record.outbox.push(goodbye.clone(), false);
            }
            record.outbox.close();
        }
    }

    /// Mirrors the kernel's record of a session's login (in the journal too, for the next
    /// process), and logs a change of name.
    pub fn set_login(&self, id: SessionId, login: Option<Login>) {
        let (peer, was) = {
            let mut records = self.lock();
            let Some(record) = records.get_mut(&id) else {
                return;
            };
            if record.login != login
                && let Some(slot) = record.outbox.slot()
            {
                slot.login(login.as_ref());
            }
            (record.peer, std::mem::replace(&mut record.login, login.clone()))
        };
        match (was, login) {
            (was, Some(now)) if was.as_ref().is_none_or(|was| was.name != now.name) => {
                crate::info_limited!(self.logins, session = id, %peer, name = %now.name, "login");
            }
            (Some(was), None) => crate::info_limited!(self.logins, session = id, %peer, name = %was.name, "logout"),
            _ => {}
        }
    }

    /// The link numbered client `id`'s latest line as frame `frame`: recorded for the next
    /// process, should this one die before the kernel applies it.
    pub fn line_numbered(&self, id: SessionId, frame: u64) {
        if let Some(record) = self.lock().get_mut(&id) {
            record.unnumbered = record.unnumbered.saturating_sub(1);
            // Only once its latest line has a number: one read after this one has none yet.
            if record.unnumbered == 0
                && let Some(slot) = record.outbox.slot()
            {
                slot.line(frame);
            }
        }
    }

    /// The kernel numbers what follows as kernel `epoch`: what an adopted client skips of a replay
    /// are numbers of another kernel process's, if not this one's.
    pub fn numbered_by(&self, epoch: u64) {
        self.journal.floors().numbered_by(epoch);
    }

    /// The kernel frame `seq` (of kernel `epoch`) is handled: recorded for the next process.
    pub fn handled(&self, epoch: u64, seq: u64) {
        self.journal.handled(epoch, seq);
    }

    /// The kernel applied the previous process's frames up to `applied`: each adopted client
    /// whose latest line came after (or never reached the kernel) is told it was lost. Returns
    /// how many were.
    pub fn lines_lost_after(&self, applied: u64, notice: &Bytes) -> usize {
        let lost = self.journal.lost_after(applied);
        self.deliver(&lost, notice, 0);
        lost.len()
    }
}
