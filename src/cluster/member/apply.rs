//! The stream's entries, applied to the replica.
//!
//! Invariant: each entry is applied once, in the stream's order, and only if it was read from
//! the current [`Reading`] (a reading from an earlier position, or of another epoch, is dropped).
//! The entries up to where this node's previous kernel had delivered are delivered, not applied:
//! the state read from Redis at the start has their effect already.

use super::super::entry::{Entry, Id, Leave};
use super::super::scripts::Claim;
use super::heal::Phase;
use super::{Emitted, Member};
use crate::chat::{ChatError, Event, Output, SessionKey};

/// Where the stream is to be read from: `generation` tells entries read from an earlier
/// position apart (they are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    pub generation: u64,
    pub from: Id,
}

/// Where the member is in the stream.
#[derive(Debug, Default)]
pub(super) struct Stream {
    applied: Id,
    /// Entries up to this one are delivered, not applied.
    deliver_only_until: Option<Id>,
    /// Where this node's previous kernel had delivered the stream to, as the join said.
    delivered: Option<Id>,
    /// The last entry whose outputs every local frontend has been written (the hub says), which
    /// each heartbeat records: a kernel that restarts delivers from there.
    written: Id,
    reading: Reading,
}

impl Stream {
    pub(super) fn reading(&self) -> Reading {
        self.reading
    }

    /// The last entry applied.
    pub(super) fn applied(&self) -> Id {
        self.applied
    }

    pub(super) fn written(&mut self, id: Id) {
        self.written = self.written.max(id);
    }

    /// How far the local frontends have been written, if anything was read yet.
    pub(super) fn written_so_far(&self) -> Option<Id> {
        Some(self.written).filter(|w| *w != Id::default())
    }

    /// Whether entries read from position `generation` are to be applied.
    pub(super) fn reads(&self, generation: u64) -> bool {
        generation == self.reading.generation
    }

    /// Whether entry `id` is not applied yet (it was read again, after a reconnection).
    pub(super) fn is_new(&self, id: Id) -> bool {
        id > self.applied || self.applied == Id::default()
    }

    /// Entry `id` is applied now; returns whether it is only to be delivered.
    pub(super) fn step(&mut self, id: Id) -> bool {
        self.applied = id;
        let deliver_only = self.deliver_only_until.is_some_and(|until| id <= until);
        if self.deliver_only_until.is_some_and(|until| id >= until) {
            self.deliver_only_until = None;
        }
        deliver_only
    }

    /// The node joined at its start; its previous kernel had delivered up to `delivered`.
    pub(super) fn joined(&mut self, delivered: Option<Id>) {
        self.delivered = delivered;
    }

    /// Everyone logged in was read, up to entry `last`: the stream is read from there, or from
    /// where the previous kernel left off if that is older (what came between is delivered only).
    pub(super) fn start(&mut self, last: Id) {
        let from = match self.delivered {
            Some(delivered) if delivered < last => {
                tracing::info!(%delivered, %last, "delivering what this node's previous kernel had not");
                self.deliver_only_until = Some(last);
                delivered
            }
            _ => last,
        };
        self.applied = from;
        self.written = from;
        self.read_from(from);
    }

    /// Reads again from the last entry applied (what was read meanwhile may be another epoch's).
    pub(super) fn read_again(&mut self) {
        self.read_from(self.applied);
    }

    /// Redis came back empty: its new stream is read from its start.
    pub(super) fn restart(&mut self) {
        self.applied = Id::default();
        self.written = Id::default();
        self.deliver_only_until = None;
        self.read_from(Id::default());
    }

    fn read_from(&mut self, from: Id) {
        self.reading = Reading {
            generation: self.reading.generation + 1,
            from,
        };
    }
}

/// An entry being applied: whose it is, and how.
#[derive(Debug, Clone, Copy)]
struct At {
    key: SessionKey,
    /// The session is this node's.
    local: bool,
    deliver_only: bool,
}

impl Member {
    /// The stream's entries, read from position `generation`, each with the epoch it was
    /// appended in.
    pub fn entries(&mut self, generation: u64, entries: Vec<(Id, String, Option<Entry>)>, out: &mut Emitted) {
        if !self.stream.reads(generation) || self.healing.phase() != Phase::Ready {
            return;
        }
        for (id, epoch, entry) in entries {
            if !self.stream.is_new(id) {
                continue;
            }
            if epoch != self.requests.epoch() {
                // Appended after Redis came back empty: this node has yet to join anew.
                self.heal();
                return;
            }
            let deliver_only = self.stream.step(id);
            let mut caused = Vec::new();
            if let Some(entry) = entry {
                self.apply(entry, deliver_only, &mut caused);
            }
            if !caused.is_empty() {
                out.push((Some(self.origin_of(id)), caused));
            }
            // Sessions waiting for this entry go on.
            while let Some(keys) = self.sessions.reached(id) {
                for key in keys {
                    self.advance(key, out);
                }
            }
        }
    }

    fn apply(&mut self, entry: Entry, deliver_only: bool, out: &mut Vec<Output>) {
        let Some(key) = self.owners.key(entry.owner()) else {
            return;
        };
        let local = self.owners.is_local(key.frontend);
        let at = At {
            key,
            local,
            deliver_only,
        };
        match entry {
            Entry::In { name, seq, silent, .. } => self.logged_in(at, name, seq, silent, out),
            Entry::Out { name, why, .. } => self.logged_out(at, name, why, out),
            Entry::All { name, time, text, .. } => self.chat.announce(Event::Public { time, from: name, text }, out),
            Entry::Msg {
                name,
                target,
                target_name,
                time,
                text,
                ..
            } => {
                let Some(to) = self.owners.key(&target) else { return };
                let event = Event::Private {
                    time,
                    from: name,
                    to: target_name,
                    text,
                };
                self.chat.tell(&[key, to], event, out);
            }
        }
    }

    fn logged_in(&mut self, at: At, name: String, seq: u64, silent: bool, out: &mut Vec<Output>) {
        let key = at.key;
        if at.local && !self.chat.has_session(key) {
            // It ended before its login was read back: forgotten again with its logout.
            self.sessions.end(key);
        }
        let known = self.chat.login_of(key).is_some_and(|l| l.name == name);
        self.healing.confirmed(key);
        if at.deliver_only {
            // Its state is in the replica already; those here hear of it all the same.
            if !silent {
                self.chat.announce(Event::Login { name }, out);
            }
        } else {
            self.chat.joined(key, &name, seq, !(silent && known), out);
        }
    }

    fn logged_out(&mut self, at: At, name: String, why: Leave, out: &mut Vec<Output>) {
        let (key, local) = (at.key, at.local);
        if at.deliver_only {
            self.chat.announce(Event::Logout { name }, out);
            if local && why == Leave::Command {
                // Its logout had not reached its frontend: it does now, and the session closes.
                out.push(Output::Named { key, login: None });
                out.push(Output::Close(key));
            }
            return;
        }
        if local && why == Leave::Reaped && !self.sessions.ended(key) {
            // Reaped while this node was cut off: it is still here, and says so again.
            if let Some(login) = self.chat.login_of(key) {
                self.reclaim(key, &login, Claim::Fenced);
            }
            return;
        }
        if local && why == Leave::Taken {
            self.chat.answer(key, Event::Error(ChatError::UsernameTaken), out);
        }
        if why == Leave::Command {
            // As on one host: the one who logs out hears it too, then the session closes.
            self.chat.announce(Event::Logout { name }, out);
            self.chat.left(key, false, out);
            if local {
                out.push(Output::Close(key));
            }
        } else {
            self.chat.left(key, true, out);
        }
        if !local || (self.sessions.ended(key) && !self.sessions.queued(key)) {
            self.forget(key);
        }
    }
}

#[cfg(test)]
mod tests;
