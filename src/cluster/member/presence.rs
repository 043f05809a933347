//! Presence, and what the member does once a second.
//!
//! Invariant: one heartbeat at a time, and none while healing; and a heartbeat reaps nobody until
//! this node has been joined for a presence's life (the others' presence may have lapsed while
//! Redis, or this node, was away).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::super::scripts::{Beaten, Call, Reply, Script};
use super::heal::Phase;
use super::owners::Owners;
use super::requests::Purpose;
use super::{Emitted, Member, PRESENCE_TTL};
use crate::chat::{Chat, SessionKey};

#[derive(Debug, Default)]
pub(super) struct Presence {
    /// Every member node, as the last heartbeat saw them.
    nodes: BTreeSet<String>,
    /// When the node last joined.
    joined_at: Option<Instant>,
}

impl Presence {
    pub(super) fn joined(&mut self, now: Instant) {
        self.joined_at = Some(now);
    }

    /// Whether a heartbeat at `now` may reap the nodes whose presence lapsed.
    pub(super) fn may_reap(&self, now: Instant) -> bool {
        self.joined_at.is_some_and(|at| now.duration_since(at) >= PRESENCE_TTL)
    }

    /// What a heartbeat answered.
    pub(super) fn beaten(&mut self, reply: Option<Reply>) {
        if let Some(Reply::Ok(fields)) = reply
            && let Some(Beaten { reaped, members }) = Beaten::read(&fields)
        {
            if !reaped.is_empty() {
                tracing::warn!(nodes = ?reaped, "reaped nodes whose presence lapsed: their users are logged out");
            }
            self.nodes = members.into_iter().collect();
        }
    }

    /// How many users each node has (node `me` and every member listed).
    pub(super) fn census(&self, me: &str, chat: &Chat, owners: &Owners) -> BTreeMap<String, u64> {
        let mut nodes: BTreeMap<String, u64> = self.nodes.iter().map(|n| (n.clone(), 0)).collect();
        nodes.insert(me.to_string(), 0);
        for (frontend, users) in chat.users_by_frontend() {
            if let Some(node) = owners.node_of(frontend) {
                *nodes.entry(node.to_string()).or_default() += users as u64;
            }
        }
        nodes
    }
}

impl Member {
    /// Once a second: a join or a read of everyone logged in asked again if due; then, once
    /// started, users whose frontend did not come back, or whom nobody asserted again after a
    /// reset, go; and a heartbeat.
    pub fn tick(&mut self, now: Instant, out: &mut Emitted) {
        match self.healing.due(now) {
            Some(Script::Join) => self.join(),
            Some(_) => {
                self.make(Call::users(), Purpose::Users);
            }
            None => {}
        }
        if self.healing.phase() == Phase::Starting {
            return;
        }
        if self.healing.unclaimed_due(now) {
            self.unclaimed();
        }
        let mut caused = Vec::new();
        for key in self.healing.unconfirmed_by(now) {
            self.chat.left(key, true, &mut caused);
            self.chat.forget(key);
        }
        out.push((None, caused));
        if self.healing.phase() == Phase::Healing || self.requests.beating() {
            return;
        }
        let reap = self.presence.may_reap(now);
        let call = Call::beat(PRESENCE_TTL, self.stream.written_so_far(), reap);
        self.make(call, Purpose::Beat);
    }

    /// Users read from Redis at the start whose frontend never said hello: it is gone.
    fn unclaimed(&mut self) {
        let unclaimed: Vec<SessionKey> = self
            .owners
            .unattached()
            .into_iter()
            .flat_map(|frontend| {
                self.chat
                    .sessions_on(frontend)
                    .into_iter()
                    .map(move |session| SessionKey { frontend, session })
            })
            .collect();
        if !unclaimed.is_empty() {
            tracing::warn!(
                sessions = unclaimed.len(),
                "users of this node whose frontend did not come back: logged out"
            );
            self.gone(&unclaimed);
        }
    }
}

#[cfg(test)]
mod tests;
