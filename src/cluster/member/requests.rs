//! The requests to Redis, in order, and what each is for.
//!
//! Invariant: requests go out in the order made, each under its own id and headed by the epoch,
//! node and instance current when it goes; an answer is acted on once. While the member heals,
//! only a join goes out: the rest (made meanwhile, or refused for a reset or a fence, so that
//! they ran nowhere) are held, and go out again once healed, in the order of their ids, under
//! the same ids.

use std::collections::BTreeMap;

use super::super::scripts::{Call, Claim, Script};
use crate::chat::SessionKey;

/// A script to run, in order with every other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub script: Script,
    /// Its ARGV, the common head (epoch, node, instance) included.
    pub args: Vec<String>,
}

/// What a request is for, to act on its reply.
#[derive(Debug, Clone)]
pub(super) enum Purpose {
    Join,
    Users,
    Beat,
    Part,
    Line(Line),
    /// Sessions of a local frontend that ended together.
    Gone,
    /// A login asserted again.
    Reclaim {
        key: SessionKey,
        claim: Claim,
    },
}

/// A session's line or end.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) key: SessionKey,
    /// The name typed for a `msg`, to say who was not found.
    pub(super) typed: Option<String>,
    /// Whether it is the session's `logout`.
    pub(super) logout: bool,
}

/// A request as it was made: its script and arguments, and what for.
#[derive(Debug, Clone)]
pub(super) struct Made {
    pub(super) call: Call,
    pub(super) purpose: Purpose,
}

#[derive(Debug)]
pub(super) struct Requests {
    node: String,
    instance: String,
    /// The epoch of the Redis data the member's state belongs to ("" before the first join).
    epoch: String,
    next_id: u64,
    /// To send, in order (the hub passes them to the link).
    outgoing: Vec<Request>,
    /// Sent and not answered, by id.
    waiting: BTreeMap<u64, Made>,
    /// Made while healing, or refused for a reset or a fence, by id.
    held: BTreeMap<u64, Made>,
    /// Requests on their way or held at most; past it a line is answered `server busy`.
    pub(super) max_pending: usize,
}

impl Requests {
    pub(super) fn new(node: &str, instance: &str, max_pending: usize) -> Self {
        Self {
            node: node.to_string(),
            instance: instance.to_string(),
            epoch: String::new(),
            next_id: 1,
            outgoing: Vec::new(),
            waiting: BTreeMap::new(),
            held: BTreeMap::new(),
            max_pending,
        }
    }

    pub(super) fn node(&self) -> &str {
        &self.node
    }

    pub(super) fn instance(&self) -> &str {
        &self.instance
    }

    pub(super) fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The epoch joined: what goes out from now on is headed by it.
    pub(super) fn set_epoch(&mut self, epoch: String) {
        self.epoch = epoch;
    }

    /// Makes a request under the next id, and sends it unless `healing` holds it.
    pub(super) fn make(&mut self, made: Made, healing: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(id, made, healing);
        id
    }

    fn send(&mut self, id: u64, made: Made, healing: bool) {
        if healing && !matches!(made.purpose, Purpose::Join) {
            self.held.insert(id, made);
            return;
        }
        let mut args = if made.call.script.takes_head() {
            vec![self.epoch.clone(), self.node.clone(), self.instance.clone()]
        } else {
            Vec::new()
        };
        args.extend(made.call.args.iter().cloned());
        self.outgoing.push(Request {
            id,
            script: made.call.script,
            args,
        });
        self.waiting.insert(id, made);
    }

    /// The requests to send, in order.
    pub(super) fn take(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.outgoing)
    }

    /// Request `id` was answered: what it was made for (`None`: answered already, or unknown).
    pub(super) fn answered(&mut self, id: u64) -> Option<Made> {
        self.waiting.remove(&id)
    }

    /// Request `id` ran nowhere (refused for a reset or a fence): it goes again once healed.
    pub(super) fn hold(&mut self, id: u64, made: Made) {
        self.held.insert(id, made);
    }

    /// Healed: every request held goes out, in order, under its id.
    pub(super) fn send_held(&mut self) {
        for (id, made) in std::mem::take(&mut self.held) {
            self.send(id, made, false);
        }
    }

    /// Requests on their way or held.
    pub(super) fn pending(&self) -> usize {
        self.waiting.len() + self.held.len()
    }

    /// Whether a line would be one too many.
    pub(super) fn full(&self) -> bool {
        self.pending() >= self.max_pending
    }

    /// Whether a heartbeat is on its way or held.
    pub(super) fn beating(&self) -> bool {
        self.waiting
            .values()
            .chain(self.held.values())
            .any(|m| matches!(m.purpose, Purpose::Beat))
    }

    /// Whether a leave of the cluster is on its way.
    pub(super) fn parting(&self) -> bool {
        self.waiting.values().any(|m| matches!(m.purpose, Purpose::Part))
    }
}

#[cfg(test)]
mod tests;
