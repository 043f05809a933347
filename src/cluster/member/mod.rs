//! A kernel as its host's member of the cluster, as state without I/O: what the hub asks of it
//! (a frontend's line, a session's end, a frontend coming or going), what it asks Redis
//! ([`Request`]s, sent in order by [`link`](super::link)), and what comes back (a script's
//! [`Reply`], the stream's [`Entry`](super::entry::Entry)s), turned into the [`Output`]s the hub
//! sends to the frontends, like the embedded kernel's.
//!
//! The replica is a [`Chat`] holding every user of every node, fed only by the stream: a login,
//! a logout or a message takes effect on every node when it reads the entry, in the stream's
//! order. Around it, one part per rule, each a struct of its own (its `//!` says which rule):
//!
//! - `owners`: which session key each `node/frontend/session` has in the replica (sessions of
//!   other nodes live under a made-up frontend id, which no connection has, so their outputs go
//!   nowhere);
//! - `requests`: the scripts for Redis, in order, held while the member heals;
//! - `order`: each local session's frames, handled one after another, what is shown waiting
//!   for the replica to read the session's own latest entry;
//! - `acks`: each local frontend's frames, acknowledged up to the first that is not done (a
//!   frame is done once its script ran or its answer is out; one sent again after a kernel
//!   restart is recognised by the scripts: `DUP`);
//! - `apply`: the stream's entries, applied to the replica once each, in order;
//! - `heal`: joining, and joining again when Redis came back empty or this node was reaped;
//! - `presence`: the heartbeat, and the census of nodes.
//!
//! What the hub calls is here, but for [`Member::entries`] (in `apply`) and [`Member::tick`]
//! (in `presence`).

mod acks;
mod apply;
mod heal;
mod order;
mod owners;
mod presence;
mod requests;

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::entry::Id;
use super::scripts::{self, Call, Claim, Frame, Refusal, Reply};
use crate::chat::{Chat, ChatError, Event, FrontendId, Login, Output, SessionId, SessionKey};
use crate::throttle::Warnings;
use crate::wire::Origin;
use acks::Acks;
pub use apply::Reading;
use apply::Stream;
use heal::{Healing, Phase};
use order::{Sessions, Work, asked};
use owners::Owners;
use presence::Presence;
pub use requests::Request;
use requests::{Line, Made, Purpose, Requests};

/// How long the users of other nodes wait, after Redis came back empty, for their nodes to
/// assert them again before they are logged out here.
pub const CONFIRM: Duration = Duration::from_secs(5);
/// A node's presence lasts this long without a heartbeat (one a second).
pub const PRESENCE_TTL: Duration = Duration::from_secs(5);
/// Requests on their way to Redis at most; past it a line is answered `server busy` (Redis is
/// down, say, and the users have sent this much meanwhile).
pub const MAX_PENDING: usize = 50_000;
/// How long this node's users read from Redis at a start wait for their frontend's hello before
/// they are logged out (the frontend is gone for good: removed, or failing).
pub const UNCLAIMED: Duration = Duration::from_secs(5);
/// Sessions logged out by one script at most (a frontend of 10,000 users that says goodbye).
const LEAVE_BATCH: usize = 500;

/// What the member causes: outputs, each batch with the origin the frontends filter it by (the
/// frame it answers, or the entry it applies).
pub type Emitted = Vec<(Option<Origin>, Vec<Output>)>;

/// The member's state.
pub struct Member {
    pub chat: Chat,
    /// Why a start or a heal waits, for the log.
    pub note: Option<String>,
    owners: Owners,
    requests: Requests,
    sessions: Sessions,
    acks: Acks,
    stream: Stream,
    healing: Healing,
    presence: Presence,
}

impl Member {
    /// A member for `node`, instance `instance` (one per `up`); its first request joins.
    pub fn new(node: &str, instance: &str) -> Self {
        let mut member = Self {
            chat: Chat::new(),
            note: None,
            owners: Owners::new(node),
            requests: Requests::new(node, instance, MAX_PENDING),
            sessions: Sessions::default(),
            acks: Acks::default(),
            stream: Stream::default(),
            healing: Healing::new(),
            presence: Presence::default(),
        };
        member.join();
        member
    }

    /// Whether it can serve: until then the hub holds what the frontends send.
    pub fn ready(&self) -> bool {
        self.healing.phase() != Phase::Starting
    }

    /// The requests to send, in order.
    pub fn take_requests(&mut self) -> Vec<Request> {
        self.requests.take()
    }

    /// Where the stream is to be read from now.
    pub fn reading(&self) -> Reading {
        self.stream.reading()
    }

    /// The last entry applied.
    pub fn applied(&self) -> Id {
        self.stream.applied()
    }

    /// The epoch of the Redis data joined, once joined.
    pub fn epoch(&self) -> Option<&str> {
        Some(self.requests.epoch()).filter(|e| !e.is_empty())
    }

    /// Every output of entries up to `id` is written to the local frontends.
    pub fn written(&mut self, id: Id) {
        self.stream.written(id);
    }

    /// Requests on their way or waiting to be sent again.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.requests.pending()
    }

    /// The origin of what an entry causes, for the frontends' duplicate filter: one origin
    /// "instance" per Redis epoch, numbered by entry id.
    pub fn origin_of(&self, id: Id) -> Origin {
        Origin {
            instance: stream_instance(self.requests.epoch()),
            seq: id.number(),
        }
    }

    fn make(&mut self, call: Call, purpose: Purpose) -> u64 {
        self.requests.make(Made { call, purpose }, self.healing.holds())
    }

    // ---- What the hub asks ------------------------------------------------------------------

    /// A local frontend (connection `frontend`, server `name`) said hello listing `sessions`.
    /// Its sessions the replica has (under its previous connection, or read from Redis at the
    /// start) move to this connection, and it is told their logins; those it no longer lists
    /// ended; those it lists and Redis does not know as logged in are asserted again.
    pub fn attach(
        &mut self,
        frontend: FrontendId,
        name: &str,
        sessions: Vec<(SessionId, Option<Login>)>,
        out: &mut Emitted,
    ) {
        if let Some(before) = self.owners.attach(name, frontend) {
            self.acks.forget(before);
            self.chat.move_frontend(before, frontend);
            self.sessions.move_frontend(before, frontend);
        }
        self.acks.attach(frontend);
        let listed: HashSet<SessionId> = sessions.iter().map(|(id, _)| *id).collect();
        let ended: Vec<SessionKey> = self
            .chat
            .sessions_on(frontend)
            .into_iter()
            .filter(|session| !listed.contains(session))
            .map(|session| SessionKey { frontend, session })
            .collect();
        let mut named = Vec::new();
        for (session, hello) in sessions {
            let key = SessionKey { frontend, session };
            let kernel = self.chat.login_of(key);
            self.chat.open(key);
            match (kernel, hello) {
                (Some(kernel), hello) if hello.as_ref() != Some(&kernel) => {
                    named.push(Output::Named {
                        key,
                        login: Some(kernel),
                    });
                }
                // Redis does not have it logged in. If this node was reaped while its kernel was away,
                // it claims the name again; otherwise it logged out meanwhile (its logout had not
                // reached the frontend), and Redis's record stands.
                (None, Some(login)) if !self.healing.kept() => self.reclaim(key, &login, Claim::Fenced),
                (None, Some(_)) => named.push(Output::Named { key, login: None }),
                _ => {}
            }
        }
        out.push((None, named));
        self.gone(&ended);
    }

    /// A local frontend's frame arrived (numbered `seq`): it is done once handled.
    pub fn arrived(&mut self, frontend: FrontendId, seq: u64) {
        self.acks.arrived(frontend, seq);
    }

    /// The local frontends whose frames are all done up to a number not reported yet.
    pub fn take_done(&mut self) -> Vec<(FrontendId, u64)> {
        self.acks.take_done()
    }

    /// A new session of a local frontend (its frame `frame`).
    pub fn open(&mut self, key: SessionKey, frame: (FrontendId, u64)) {
        self.chat.open(key);
        self.acks.done(frame);
    }

    /// A line of a local session: its frame `frame`, from frontend process `process` (for the
    /// scripts' duplicate check), at `time` (`HH:MM:SS`).
    ///
    /// What it is answered here goes out without an origin: answers come in the order of each
    /// session, not of the frontend's frames, which the frontends' duplicate filter counts on.
    pub fn line(
        &mut self,
        key: SessionKey,
        frame: (FrontendId, u64),
        process: u64,
        line: &str,
        time: &str,
        out: &mut Emitted,
    ) {
        let owner = self.owners.owner(key);
        let (Some(owner), false, true) = (owner, self.sessions.closing(key), self.chat.has_session(key)) else {
            self.acks.done(frame);
            return;
        };
        let recorded = Frame {
            owner: &owner,
            process,
            seq: frame.1,
        };
        let work = match asked(line, recorded, time) {
            None => Work::Local(line.to_string()),
            Some((call, typed)) => {
                let logout = call.script == scripts::Script::Leave;
                let made = Made {
                    call,
                    purpose: Purpose::Line(Line { key, typed, logout }),
                };
                if self.sessions.behind_local(key) {
                    Work::Deferred(made)
                } else if self.requests.full() {
                    Work::Answered(Some(Event::Error(ChatError::ServerBusy)))
                } else {
                    Work::Sent(self.requests.make(made, self.healing.holds()))
                }
            }
        };
        self.sessions.push(key, frame, work);
        self.advance(key, out);
    }

    /// A local session ended (frame `frame`): its user, if logged in, is logged out for everyone
    /// once its earlier lines are through.
    pub fn closed(&mut self, key: SessionKey, frame: (FrontendId, u64), out: &mut Emitted) {
        let idle = !self.sessions.queued(key);
        let Some(owner) = self
            .owners
            .owner(key)
            .filter(|_| !idle || self.chat.login_of(key).is_some())
        else {
            self.sessions.drop_queue(key);
            self.chat.forget(key);
            self.acks.done(frame);
            return;
        };
        let purpose = Purpose::Line(Line {
            key,
            typed: None,
            logout: false,
        });
        let id = self.make(Call::gone([owner]), purpose);
        self.sessions.close(key, frame, id);
        self.advance(key, out);
    }

    /// Local frontend `frontend` is gone for good (it said goodbye, or did not come back in
    /// time): its users are logged out for everyone.
    pub fn frontend_gone(&mut self, frontend: FrontendId) {
        let keys: Vec<SessionKey> = self
            .chat
            .sessions_on(frontend)
            .into_iter()
            .map(|session| SessionKey { frontend, session })
            .collect();
        for key in &keys {
            self.sessions.drop_queue(*key);
        }
        self.acks.forget(frontend);
        self.gone(&keys);
    }

    /// These local sessions ended together: logged out for everyone (one script for all), and
    /// forgotten once that is read back.
    fn gone(&mut self, keys: &[SessionKey]) {
        let mut owners = Vec::new();
        for key in keys {
            if self.chat.login_of(*key).is_none() {
                self.chat.forget(*key);
                continue;
            }
            self.sessions.end(*key);
            owners.extend(self.owners.owner(*key));
        }
        for batch in owners.chunks(LEAVE_BATCH) {
            self.make(Call::gone(batch.iter().cloned()), Purpose::Gone);
        }
    }

    fn forget(&mut self, key: SessionKey) {
        self.sessions.forget(key);
        self.chat.forget(key);
    }

    /// How many users each node has, for `status` (every member listed).
    pub fn census(&self) -> BTreeMap<String, u64> {
        self.presence.census(self.requests.node(), &self.chat, &self.owners)
    }

    /// The kernel stops: the node leaves the cluster if nobody is logged in on it (so that an
    /// `up` right after a `down` need not wait for its presence to lapse).
    pub fn part(&mut self) {
        if self.healing.phase() == Phase::Ready {
            self.make(Call::part(), Purpose::Part);
        }
    }

    /// Whether a leave is on its way.
    pub fn parting(&self) -> bool {
        self.requests.parting()
    }

    // ---- What comes back ----------------------------------------------------------------------

    /// Redis answered request `id` (`None`: an error, or an answer that makes no sense).
    pub fn answered(&mut self, id: u64, reply: Option<Reply>, now: Instant, out: &mut Emitted) {
        let Some(made) = self.requests.answered(id) else { return };
        if let Some(Reply::Refused(Refusal::Unknown(why))) = &reply {
            crate::warn_limited!(
                UNKNOWN_REFUSALS,
                script = ?made.call.script,
                refusal = %why,
                "a cluster script refused for a reason this version does not know"
            );
        }
        if let Some(Reply::Reset | Reply::Fenced) = reply {
            match made.purpose {
                // Its script ran nowhere: it goes again, in its place, once healed.
                Purpose::Line(_) | Purpose::Gone | Purpose::Reclaim { .. } => self.requests.hold(id, made),
                Purpose::Beat | Purpose::Part | Purpose::Join | Purpose::Users => {}
            }
            match self.healing.phase() {
                Phase::Starting => self.join(),
                Phase::Ready | Phase::Healing => self.heal(),
            }
            return;
        }
        match made.purpose {
            Purpose::Join => self.joined(reply, now),
            Purpose::Users => {
                let mut caused = Vec::new();
                self.users(reply, now, &mut caused);
                out.push((None, caused));
            }
            Purpose::Beat => self.presence.beaten(reply),
            Purpose::Part | Purpose::Gone => {}
            Purpose::Reclaim { key, claim } => self.reclaimed(key, claim, reply, out),
            Purpose::Line(line) => self.line_answered(id, line, reply, out),
        }
    }
}

/// Refusals this version does not know, logged a few a second at most (every line of a newer
/// script's could meet one).
static UNKNOWN_REFUSALS: LazyLock<Warnings> = LazyLock::new(|| Warnings::new(1, 5));

/// The origin "instance" of the entries of one Redis epoch (FNV-1a of it, top bit set so that it
/// is no frontend's instance).
fn stream_instance(epoch: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in epoch.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash | (1 << 63)
}

/// A random number, from the time and the process (ids that only need to differ).
fn random() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    stream_instance(&format!("{nanos}/{}", std::process::id()))
}

#[cfg(test)]
mod tests;
