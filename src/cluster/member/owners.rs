//! Owners: the `node/frontend/session` strings that name a session in Redis, and the session keys
//! they have in the replica.
//!
//! Invariant: each (node, frontend) has one frontend id at a time, and each id one (node,
//! frontend). A local frontend's id is its connection's (it changes when the frontend says hello
//! again); any other's is made up, counting down from [`FrontendId::MAX`], so that no connection
//! has it and what the replica sends there goes nowhere.

use std::collections::HashMap;

use crate::chat::{FrontendId, SessionId, SessionKey};

#[derive(Debug)]
pub(super) struct Owners {
    me: String,
    ids: HashMap<(String, String), FrontendId>,
    of: HashMap<FrontendId, (String, String)>,
    next_made_up: FrontendId,
}

impl Owners {
    /// The owners seen by node `me`.
    pub(super) fn new(me: &str) -> Self {
        Self {
            me: me.to_string(),
            ids: HashMap::new(),
            of: HashMap::new(),
            next_made_up: FrontendId::MAX,
        }
    }

    /// The key of `owner` (`None`: not an owner), its frontend made up if it is new.
    pub(super) fn key(&mut self, owner: &str) -> Option<SessionKey> {
        let mut parts = owner.splitn(3, '/');
        let (node, frontend, session) = (parts.next()?, parts.next()?, parts.next()?);
        let session: SessionId = session.parse().ok()?;
        let pair = (node.to_string(), frontend.to_string());
        let id = match self.ids.get(&pair) {
            Some(id) => *id,
            None => {
                let id = self.next_made_up;
                self.next_made_up -= 1;
                self.ids.insert(pair.clone(), id);
                self.of.insert(id, pair);
                id
            }
        };
        Some(SessionKey { frontend: id, session })
    }

    pub(super) fn owner(&self, key: SessionKey) -> Option<String> {
        let (node, frontend) = self.of.get(&key.frontend)?;
        Some(format!("{node}/{frontend}/{}", key.session))
    }

    pub(super) fn is_local(&self, frontend: FrontendId) -> bool {
        self.of.get(&frontend).is_some_and(|(node, _)| *node == self.me)
    }

    pub(super) fn node_of(&self, frontend: FrontendId) -> Option<&str> {
        self.of.get(&frontend).map(|(node, _)| node.as_str())
    }

    /// Local frontend `name` is connection `id` now; returns the id its sessions had until now.
    pub(super) fn attach(&mut self, name: &str, id: FrontendId) -> Option<FrontendId> {
        let pair = (self.me.clone(), name.to_string());
        let before = self.ids.insert(pair.clone(), id);
        if let Some(before) = before {
            self.of.remove(&before);
        }
        self.of.insert(id, pair);
        before.filter(|b| *b != id)
    }

    /// Every id of this node's frontends, in order.
    pub(super) fn local(&self) -> Vec<FrontendId> {
        let mut ids: Vec<FrontendId> = self
            .of
            .iter()
            .filter(|(_, (node, _))| *node == self.me)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// This node's frontends that no connection has said hello as: their users were read from
    /// Redis at the start.
    pub(super) fn unattached(&self) -> Vec<FrontendId> {
        let mut ids = self.local();
        ids.retain(|id| *id > FrontendId::MAX / 2);
        ids
    }

    /// Every id of other nodes' frontends.
    pub(super) fn remote(&self) -> impl Iterator<Item = FrontendId> + '_ {
        self.of
            .iter()
            .filter(|(_, (node, _))| *node != self.me)
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests;
