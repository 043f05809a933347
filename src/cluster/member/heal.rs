//! Joining and healing: the member's standing with Redis.
//!
//! Invariant: the member serves only once joined and having read everyone logged in; when Redis
//! refuses it (`RESET`: it came back empty; `FENCED`: this node was reaped while cut off) it
//! joins again before anything else goes out, and asserts its users' logins once more: after a
//! reset quietly, the earlier login of a name winning, and users of other nodes that nobody
//! asserts again within [`CONFIRM`] are logged out here; after a fence only where the name is
//! still free (a session whose name was taken meanwhile is told so and closed), reading everyone
//! logged in again to put right what it missed for good.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::super::scripts::{Call, Claim, Everyone, Joined, Reply, Script};
use super::requests::Purpose;
use super::{CONFIRM, Emitted, Member, PRESENCE_TTL, UNCLAIMED};
use crate::chat::{ChatError, Event, Login, Output, SessionKey};

/// Waits before a join or a read of everyone logged in is asked again: from the first to the last,
/// doubling.
const AGAIN_FIRST: Duration = Duration::from_millis(100);
const AGAIN_LAST: Duration = Duration::from_secs(1);

/// Where the member is with Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Joining, then reading everyone logged in: the hub holds everything else meanwhile.
    Starting,
    Ready,
    /// Refused for a reset or a fence: joining again; what is made or refused meanwhile waits.
    Healing,
}

/// The member's standing, and what a start or a heal still waits for.
#[derive(Debug)]
pub(super) struct Healing {
    phase: Phase,
    /// A join or a read of everyone logged in to ask again (after a refusal or an error), and when.
    again: Option<(Instant, Script)>,
    backoff: Duration,
    /// Whether Redis still had this node registered as this instance when its kernel started (a
    /// kernel restart in time: Redis's record of its users stands).
    kept: bool,
    /// When this node's users read from Redis at the start whose frontend has not said hello
    /// are taken for gone.
    unclaimed_at: Option<Instant>,
    /// After a reset: users of other nodes not asserted again yet, and since when.
    unconfirmed: HashMap<SessionKey, Instant>,
}

impl Healing {
    pub(super) fn new() -> Self {
        Self {
            phase: Phase::Starting,
            again: None,
            backoff: AGAIN_FIRST,
            kept: false,
            unclaimed_at: None,
            unconfirmed: HashMap::new(),
        }
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether requests other than a join are held.
    pub(super) fn holds(&self) -> bool {
        self.phase == Phase::Healing
    }

    /// Whether Redis's record of this node's users stands (see [`Joined::kept`]).
    pub(super) fn kept(&self) -> bool {
        self.kept
    }

    /// Refused by Redis while ready: heals. Returns whether it was ready (a heal under way, or a
    /// start, goes on as it is).
    fn refused(&mut self) -> bool {
        let ready = self.phase == Phase::Ready;
        if ready {
            self.phase = Phase::Healing;
        }
        ready
    }

    /// Its join was answered: asking again starts over from the shortest wait. At the start,
    /// `kept` says whether Redis's record of its users stands; after a refusal, it is ready again.
    fn joined(&mut self, kept: bool) {
        self.backoff = AGAIN_FIRST;
        match self.phase {
            Phase::Starting => self.kept = kept,
            Phase::Ready | Phase::Healing => self.phase = Phase::Ready,
        }
    }

    /// Redis came back empty at `now`: the users of other nodes in `keys` are waited for.
    fn reset(&mut self, keys: Vec<SessionKey>, now: Instant) {
        self.unconfirmed.extend(keys.into_iter().map(|key| (key, now)));
    }

    /// Read everyone logged in at the start, at `now`.
    fn started(&mut self, now: Instant) {
        self.phase = Phase::Ready;
        self.unclaimed_at = Some(now + UNCLAIMED);
    }

    /// Asks `script` again, after `at_least` (a lapsing presence) or the backoff.
    fn ask_again(&mut self, script: Script, now: Instant, at_least: Option<Duration>) {
        let wait = at_least.map_or(self.backoff, |w| w.clamp(AGAIN_FIRST, AGAIN_LAST));
        self.backoff = (self.backoff * 2).min(AGAIN_LAST);
        self.again = Some((now + wait, script));
    }

    /// The join or read of everyone logged in to ask again now, if any.
    pub(super) fn due(&mut self, now: Instant) -> Option<Script> {
        let (at, script) = self.again?;
        if now < at {
            return None;
        }
        self.again = None;
        Some(script)
    }

    /// Whether the users read from Redis at the start whose frontend did not say hello are to be
    /// taken for gone now (once).
    pub(super) fn unclaimed_due(&mut self, now: Instant) -> bool {
        let due = self.unclaimed_at.is_some_and(|at| now >= at);
        if due {
            self.unclaimed_at = None;
        }
        due
    }

    /// The user of `key` was asserted again.
    pub(super) fn confirmed(&mut self, key: SessionKey) {
        self.unconfirmed.remove(&key);
    }

    /// The users not asserted again within [`CONFIRM`] of a reset, by `now`: no longer waited for.
    pub(super) fn unconfirmed_by(&mut self, now: Instant) -> Vec<SessionKey> {
        let expired: Vec<SessionKey> = self
            .unconfirmed
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= CONFIRM)
            .map(|(key, _)| *key)
            .collect();
        for key in &expired {
            self.unconfirmed.remove(key);
        }
        expired
    }
}

impl Member {
    /// Joins the cluster: the first request, and the first of each heal.
    pub(super) fn join(&mut self) {
        let candidate = format!("{:016x}", super::random());
        let call = Call::join(&candidate, self.requests.node(), self.requests.instance(), PRESENCE_TTL);
        self.make(call, Purpose::Join);
    }

    /// Redis refused this node for a reset or a fence: it joins again.
    pub(super) fn heal(&mut self) {
        if !self.healing.refused() {
            return;
        }
        tracing::warn!("Redis refused this node (it came back empty, or this node was reaped): joining again");
        // Entries read meanwhile may be another epoch's: read again once healed.
        self.stream.read_again();
        self.join();
    }

    pub(super) fn joined(&mut self, reply: Option<Reply>, now: Instant) {
        let Joined { epoch, delivered, kept } = match reply {
            Some(Reply::Ok(fields)) if let Some(joined) = Joined::read(&fields) => joined,
            Some(Reply::Busy(ms)) => {
                self.note = Some(format!(
                    "node name `{}` is held by another live instance (its presence lapses in {ms} ms): waiting",
                    self.requests.node()
                ));
                self.healing
                    .ask_again(Script::Join, now, Some(Duration::from_millis(ms)));
                return;
            }
            other => {
                self.note = Some(format!("could not join the cluster ({other:?}): trying again"));
                self.healing.ask_again(Script::Join, now, None);
                return;
            }
        };
        let starting = self.healing.phase() == Phase::Starting;
        self.healing.joined(kept);
        self.presence.joined(now);
        if starting {
            self.requests.set_epoch(epoch);
            self.stream.joined(delivered);
            self.make(Call::users(), Purpose::Users);
            return;
        }
        self.healed(epoch, now);
    }

    /// Joined again after a refusal: asserts this node's users again, then sends what waited.
    fn healed(&mut self, epoch: String, now: Instant) {
        let reset = epoch != self.requests.epoch();
        self.requests.set_epoch(epoch);
        if reset {
            tracing::warn!("Redis came back empty: asserting this node's users again");
            let remote = self.remote_keys();
            self.healing.reset(remote, now);
            self.stream.restart();
        } else {
            tracing::warn!("this node was reaped while cut off: claiming its users' names again");
            // Read on from where it was; and what it may have missed for good (trimmed while it
            // was away), the current list of everyone logged in puts right.
            self.stream.read_again();
            self.make(Call::users(), Purpose::Users);
        }
        let claim = if reset { Claim::Reset } else { Claim::Fenced };
        for frontend in self.owners.local() {
            for (session, login) in self.chat.logins_on(frontend) {
                let key = SessionKey { frontend, session };
                if !self.sessions.ended(key) {
                    self.reclaim(key, &login, claim);
                }
            }
        }
        self.requests.send_held();
    }

    pub(super) fn users(&mut self, reply: Option<Reply>, now: Instant, out: &mut Vec<Output>) {
        let Some(Everyone { last, mut users }) = reply.and_then(|r| match r {
            Reply::Ok(fields) => Everyone::read(&fields),
            _ => None,
        }) else {
            self.note = Some("could not read who is logged in: trying again".into());
            self.healing.ask_again(Script::Users, now, None);
            return;
        };
        if self.healing.phase() != Phase::Starting {
            self.resync(users, out);
            return;
        }
        users.sort_by_key(|(_, login)| login.seq);
        for (owner, login) in users {
            if let Some(key) = self.owners.key(&owner) {
                self.chat.joined(key, &login.name, login.seq, false, out);
            }
        }
        self.stream.start(last);
        self.healing.started(now);
        self.note = None;
    }

    /// Puts the replica's users of other nodes right by the list of everyone logged in: after a
    /// fence, what the node missed for good.
    fn resync(&mut self, mut users: Vec<(String, Login)>, out: &mut Vec<Output>) {
        users.sort_by_key(|(_, login)| login.seq);
        let listed: Vec<(SessionKey, Login)> = users
            .into_iter()
            .filter_map(|(owner, login)| Some((self.owners.key(&owner)?, login)))
            .collect();
        let keys: HashSet<SessionKey> = listed.iter().map(|(key, _)| *key).collect();
        for key in self.remote_keys() {
            if !keys.contains(&key) {
                self.chat.left(key, true, out);
                self.chat.forget(key);
            }
        }
        for (key, login) in listed {
            if !self.owners.is_local(key.frontend) {
                self.chat.joined(key, &login.name, login.seq, true, out);
            }
        }
    }

    /// Asserts `key`'s login in Redis again.
    pub(super) fn reclaim(&mut self, key: SessionKey, login: &Login, claim: Claim) {
        let Some(owner) = self.owners.owner(key) else { return };
        self.make(Call::reclaim(owner, login, claim), Purpose::Reclaim { key, claim });
    }

    pub(super) fn reclaimed(&mut self, key: SessionKey, claim: Claim, reply: Option<Reply>, out: &mut Emitted) {
        // `taken` is the one refusal of a reclaim.
        if let Some(Reply::Refused(_)) = reply {
            // Taken meanwhile: told, logged out here too, and (after a fence) closed.
            let mut caused = Vec::new();
            self.chat
                .answer(key, Event::Error(ChatError::UsernameTaken), &mut caused);
            self.chat.left(key, true, &mut caused);
            if claim == Claim::Fenced {
                caused.push(Output::Close(key));
            }
            out.push((None, caused));
        }
    }

    /// The users of other nodes in the replica.
    fn remote_keys(&self) -> Vec<SessionKey> {
        let mut keys = Vec::new();
        for frontend in self.owners.remote() {
            keys.extend(
                self.chat
                    .logins_on(frontend)
                    .into_iter()
                    .map(|(session, _)| SessionKey { frontend, session }),
            );
        }
        keys
    }
}

#[cfg(test)]
mod tests;
