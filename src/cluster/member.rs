//! A kernel as its host's member of the cluster, as state without I/O: what the hub asks of it
//! (a frontend's line, a session's end, a frontend coming or going), what it asks Redis
//! ([`Request`]s, sent in order by [`link`](super::link)), and what comes back (a script's
//! [`Reply`], the stream's [`Entry`]s), turned into the [`Output`]s the hub sends to the
//! frontends, like the embedded kernel's.
//!
//! - **The replica.** A [`Chat`] holding every user of every node, fed only by the stream: a
//!   login, a logout or a message takes effect on every node when it reads the entry, in the
//!   stream's order. Sessions of other nodes live under a made-up frontend id per (node,
//!   frontend), which no connection has, so their outputs go nowhere.
//! - **Each session in order.** A session's lines are handled one after another: a line that
//!   changes the chat goes to Redis at once (several of one session may be on their way, Redis
//!   runs them in order); a line answered here (`whoami`, `userlist`, `help`, a syntax error) or
//!   a refusal waits until everything before it is done and the replica has read that session's
//!   own last entry, so that `login ann` then `whoami` says `ann`, and no answer overtakes an
//!   earlier line's effect.
//! - **Acknowledgements.** A frontend's frame is done once its script ran (its effect is in
//!   Redis, and reaches everyone through the stream) or its answer is out; frames are
//!   acknowledged up to the first that is not done. A frame sent again after a kernel restart is
//!   recognised by the scripts (`DUP`).
//! - **Healing.** A script that finds Redis empty (`RESET`, another epoch) or this node reaped
//!   (`FENCED`) stops the sending: the node joins again and asserts its users' logins once more
//!   (after a reset, quietly, and the earlier login of a name wins; after a fence, only where the
//!   name is still free: a session whose name was taken meanwhile is told so and closed), then
//!   sends again, in order, what was refused meanwhile. After a reset, users of other nodes that
//!   nobody asserts again within [`CONFIRM`] are logged out here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::entry::{Entry, Id, Leave};
use super::scripts::{self, Beaten, Call, Claim, Everyone, Frame, Joined, Refusal, Reply, Script};
use crate::chat::command::{self, Command};
use crate::chat::{Chat, ChatError, Event, FrontendId, Login, Output, SessionId, SessionKey};
use crate::throttle::Warnings;
use crate::wire::Origin;

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
/// Waits before a join or a read of everyone logged in is asked again: from the first to the last,
/// doubling.
const AGAIN_FIRST: Duration = Duration::from_millis(100);
const AGAIN_LAST: Duration = Duration::from_secs(1);

/// A script to run, in order with every other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub script: Script,
    /// Its ARGV, the common head (epoch, node, instance) included.
    pub args: Vec<String>,
}

/// Where the stream is to be read from: `generation` tells entries read from an earlier
/// position apart (they are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    pub generation: u64,
    pub from: Id,
}

/// What a request is for, to act on its reply.
#[derive(Debug, Clone)]
enum Purpose {
    Join,
    Users,
    Beat,
    Part,
    /// A session's line or end; the name typed for a `msg` (for `notfound`); whether it is its
    /// `logout`.
    Line {
        key: SessionKey,
        typed: Option<String>,
        logout: bool,
    },
    /// Sessions of a local frontend that ended together.
    Gone,
    /// A login asserted again.
    Reclaim {
        key: SessionKey,
        claim: Claim,
    },
}

/// A request as it was made: its script and arguments, and what for.
#[derive(Debug, Clone)]
struct Made {
    call: Call,
    purpose: Purpose,
}

/// One frame of a session, in its queue.
#[derive(Debug)]
struct Item {
    /// The frontend's frame (its number), to mark done.
    frame: Option<(FrontendId, u64)>,
    work: Work,
}

#[derive(Debug)]
enum Work {
    /// Answered from the replica once at the front: the line.
    Local(String),
    /// A script for this line, held until the local answer before it is out.
    Deferred(Made),
    /// Its script is on its way (request id).
    Sent(u64),
    /// Its script answered; this is shown (if anything) once at the front.
    Answered(Option<Event>),
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    /// The entry of this session's latest action: what is answered here waits until the replica
    /// has applied it.
    after: Option<Id>,
    /// Its `logout` went through, or the session ended: later lines are ignored, as the embedded
    /// kernel ignores them.
    closing: bool,
}

/// One local frontend's frames: which are done, for its acknowledgements.
#[derive(Debug, Default)]
struct Frames {
    open: BTreeSet<u64>,
    highest: u64,
    reported: u64,
}

impl Frames {
    /// Every frame up to this one is done.
    fn done_up_to(&self) -> u64 {
        self.open.first().map_or(self.highest, |first| first - 1)
    }
}

/// Owners (`node/frontend/session`) and the session keys they have in the replica.
#[derive(Debug)]
struct Owners {
    me: String,
    /// (node, frontend) to frontend id: a local frontend's connection, or a made-up one.
    ids: HashMap<(String, String), FrontendId>,
    of: HashMap<FrontendId, (String, String)>,
    next_made_up: FrontendId,
}

impl Owners {
    fn new(me: &str) -> Self {
        Self {
            me: me.to_string(),
            ids: HashMap::new(),
            of: HashMap::new(),
            next_made_up: FrontendId::MAX,
        }
    }

    fn key(&mut self, owner: &str) -> Option<SessionKey> {
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

    fn owner(&self, key: SessionKey) -> Option<String> {
        let (node, frontend) = self.of.get(&key.frontend)?;
        Some(format!("{node}/{frontend}/{}", key.session))
    }

    fn is_local(&self, frontend: FrontendId) -> bool {
        self.of.get(&frontend).is_some_and(|(node, _)| *node == self.me)
    }

    fn node_of(&self, frontend: FrontendId) -> Option<&str> {
        self.of.get(&frontend).map(|(node, _)| node.as_str())
    }

    /// Local frontend `name` is connection `id` now; returns the id its sessions had until now.
    fn attach(&mut self, name: &str, id: FrontendId) -> Option<FrontendId> {
        let pair = (self.me.clone(), name.to_string());
        let before = self.ids.insert(pair.clone(), id);
        if let Some(before) = before {
            self.of.remove(&before);
        }
        self.of.insert(id, pair);
        before.filter(|b| *b != id)
    }

    /// Every id of this node's frontends.
    fn local(&self) -> Vec<FrontendId> {
        let mut ids: Vec<FrontendId> = self
            .of
            .iter()
            .filter(|(_, (n, _))| *n == self.me)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Where the member is with Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Joining, then reading everyone logged in: the hub holds everything else meanwhile.
    Starting,
    Ready,
    /// Refused for a reset or a fence: joining again; what is made or refused meanwhile waits.
    Healing,
}

/// What the member causes: outputs, each batch with the origin the frontends filter it by (the
/// frame it answers, or the entry it applies).
pub type Emitted = Vec<(Option<Origin>, Vec<Output>)>;

/// The member's state.
pub struct Member {
    node: String,
    instance: String,
    /// The epoch of the Redis data this member's state belongs to ("" before the first join).
    epoch: String,
    pub chat: Chat,
    owners: Owners,
    phase: Phase,
    queues: HashMap<SessionKey, Queue>,
    /// Local sessions that ended (or whose frontend is gone): forgotten once logged out.
    ending: HashSet<SessionKey>,
    frames: HashMap<FrontendId, Frames>,
    next_id: u64,
    /// To send, in order (the hub passes them to the link).
    outgoing: Vec<Request>,
    /// Sent and not answered, by id.
    waiting: BTreeMap<u64, Made>,
    /// Made while healing, or refused for a reset or a fence, by id: sent again, in order and
    /// under the same id, once healed.
    parked: BTreeMap<u64, Made>,
    /// The last entry applied; entries up to `deliver_only_until` are delivered, not applied (a
    /// kernel that starts reads what it missed: its state has their effect already).
    applied: Id,
    deliver_only_until: Option<Id>,
    /// Where this node had delivered the stream to, as the join said (its previous kernel's).
    delivered: Option<Id>,
    /// The last entry whose outputs every local frontend has been written (the hub says), which
    /// each heartbeat records: a kernel that restarts delivers from there.
    written: Id,
    reading: Reading,
    /// Sessions whose front item waits for the replica to reach an entry.
    waiters: BTreeMap<Id, HashSet<SessionKey>>,
    /// After a reset: users of other nodes not asserted again yet, and since when.
    unconfirmed: HashMap<String, Instant>,
    /// When the node last joined: it reaps nobody for a presence's lifetime after (the others'
    /// may have lapsed while Redis was away).
    joined_at: Option<Instant>,
    /// Why a start or a heal waits, for the log.
    pub note: Option<String>,
    /// Every member node, as the last heartbeat saw them.
    nodes: BTreeSet<String>,
    /// [`MAX_PENDING`] (tests lower it).
    max_pending: usize,
    /// A join or a read of everyone logged in to ask again (after a refusal or an error), and when.
    again: Option<(Instant, Script)>,
    backoff: Duration,
    /// Whether Redis still had this node registered as this instance when its kernel started (a
    /// kernel restart in time: Redis's record of its users stands).
    kept: bool,
    /// When the member became ready; its frontends that have not said hello by [`UNCLAIMED`]
    /// after are gone.
    ready_at: Option<Instant>,
    unclaimed_swept: bool,
}

impl Member {
    /// A member for `node`, instance `instance` (one per `up`); its first request joins.
    pub fn new(node: &str, instance: &str) -> Self {
        let mut member = Self {
            node: node.to_string(),
            instance: instance.to_string(),
            epoch: String::new(),
            chat: Chat::new(),
            owners: Owners::new(node),
            phase: Phase::Starting,
            queues: HashMap::new(),
            ending: HashSet::new(),
            frames: HashMap::new(),
            next_id: 1,
            outgoing: Vec::new(),
            waiting: BTreeMap::new(),
            parked: BTreeMap::new(),
            applied: Id::default(),
            deliver_only_until: None,
            delivered: None,
            written: Id::default(),
            reading: Reading::default(),
            waiters: BTreeMap::new(),
            unconfirmed: HashMap::new(),
            joined_at: None,
            note: None,
            nodes: BTreeSet::new(),
            max_pending: MAX_PENDING,
            again: None,
            backoff: AGAIN_FIRST,
            kept: false,
            ready_at: None,
            unclaimed_swept: false,
        };
        member.join();
        member
    }

    /// Whether it can serve: until then the hub holds what the frontends send.
    pub fn ready(&self) -> bool {
        self.phase != Phase::Starting
    }

    /// The requests to send, in order.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.outgoing)
    }

    /// Where the stream is to be read from now.
    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// The last entry applied.
    pub fn applied(&self) -> Id {
        self.applied
    }

    /// The epoch of the Redis data joined ("" until joined).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Every output of entries up to `id` is written to the local frontends.
    pub fn written(&mut self, id: Id) {
        self.written = self.written.max(id);
    }

    /// Requests on their way or waiting to be sent again.
    pub fn pending(&self) -> usize {
        self.waiting.len() + self.parked.len()
    }

    /// The origin of what an entry causes, for the frontends' duplicate filter: one origin
    /// "instance" per Redis epoch, numbered by entry id.
    pub fn origin_of(&self, id: Id) -> Origin {
        Origin {
            instance: stream_instance(&self.epoch),
            seq: id.number(),
        }
    }

    fn make(&mut self, call: Call, purpose: Purpose) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(id, Made { call, purpose });
        id
    }

    fn send(&mut self, id: u64, made: Made) {
        if self.phase == Phase::Healing && !matches!(made.purpose, Purpose::Join) {
            self.parked.insert(id, made);
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

    fn join(&mut self) {
        let candidate = format!("{:016x}", random());
        let call = Call::join(&candidate, &self.node, &self.instance, PRESENCE_TTL);
        self.make(call, Purpose::Join);
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
            self.frames.remove(&before);
            self.chat.move_frontend(before, frontend);
            let moved: Vec<SessionKey> = self.queues.keys().filter(|k| k.frontend == before).copied().collect();
            for key in moved {
                let queue = self.queues.remove(&key).expect("listed");
                self.queues.insert(SessionKey { frontend, ..key }, queue);
            }
            self.ending = self
                .ending
                .drain()
                .map(|k| {
                    if k.frontend == before {
                        SessionKey { frontend, ..k }
                    } else {
                        k
                    }
                })
                .collect();
        }
        self.frames.insert(frontend, Frames::default());
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
                (None, Some(login)) if !self.kept => self.reclaim(key, &login, Claim::Fenced),
                (None, Some(_)) => named.push(Output::Named { key, login: None }),
                _ => {}
            }
        }
        out.push((None, named));
        self.gone(&ended);
    }

    /// A local frontend's frame arrived (numbered `seq`): it is done once handled.
    pub fn arrived(&mut self, frontend: FrontendId, seq: u64) {
        let frames = self.frames.entry(frontend).or_default();
        frames.open.insert(seq);
        frames.highest = frames.highest.max(seq);
    }

    fn done(&mut self, frame: Option<(FrontendId, u64)>) {
        if let Some((frontend, seq)) = frame
            && let Some(frames) = self.frames.get_mut(&frontend)
        {
            frames.open.remove(&seq);
        }
    }

    /// The local frontends whose frames are all done up to a number not reported yet.
    pub fn take_done(&mut self) -> Vec<(FrontendId, u64)> {
        let mut done = Vec::new();
        for (frontend, frames) in &mut self.frames {
            let upto = frames.done_up_to();
            if upto > frames.reported {
                frames.reported = upto;
                done.push((*frontend, upto));
            }
        }
        done
    }

    /// A new session of a local frontend (its frame `frame`).
    pub fn open(&mut self, key: SessionKey, frame: (FrontendId, u64)) {
        self.chat.open(key);
        self.done(Some(frame));
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
        let closing = self.queues.get(&key).is_some_and(|q| q.closing);
        let (Some(owner), false, true) = (owner, closing, self.chat.has_session(key)) else {
            self.done(Some(frame));
            return;
        };
        let frame_of = Frame {
            owner: &owner,
            process,
            seq: frame.1,
        };
        let (call, typed) = match command::parse(line) {
            Some(Ok(Command::Login { name })) => (Call::login(frame_of, name), None),
            Some(Ok(Command::Logout)) => (Call::logout(frame_of), None),
            Some(Ok(Command::Msg { name, text })) => {
                (Call::say(frame_of, time, text, Some(name)), Some(name.to_string()))
            }
            Some(Ok(Command::MsgAll { text })) => (Call::say(frame_of, time, text, None), None),
            _ => {
                let queue = self.queues.entry(key).or_default();
                queue.items.push_back(Item {
                    frame: Some(frame),
                    work: Work::Local(line.to_string()),
                });
                self.advance(key, out);
                return;
            }
        };
        let logout = call.script == Script::Leave;
        let behind_local = self
            .queues
            .get(&key)
            .is_some_and(|q| q.items.iter().any(|i| matches!(i.work, Work::Local(_))));
        let purpose = Purpose::Line { key, typed, logout };
        let work = if behind_local {
            Work::Deferred(Made { call, purpose })
        } else if self.pending() >= self.max_pending {
            Work::Answered(Some(Event::Error(ChatError::ServerBusy)))
        } else {
            Work::Sent(self.make(call, purpose))
        };
        let queue = self.queues.entry(key).or_default();
        queue.items.push_back(Item {
            frame: Some(frame),
            work,
        });
        self.advance(key, out);
    }

    /// A local session ended (frame `frame`): its user, if logged in, is logged out for everyone
    /// once its earlier lines are through.
    pub fn closed(&mut self, key: SessionKey, frame: (FrontendId, u64), out: &mut Emitted) {
        let idle = self.queues.get(&key).is_none_or(|q| q.items.is_empty());
        let Some(owner) = self
            .owners
            .owner(key)
            .filter(|_| !idle || self.chat.login_of(key).is_some())
        else {
            self.queues.remove(&key);
            self.chat.forget(key);
            self.done(Some(frame));
            return;
        };
        self.ending.insert(key);
        let purpose = Purpose::Line {
            key,
            typed: None,
            logout: false,
        };
        let id = self.make(Call::gone([owner]), purpose);
        let queue = self.queues.entry(key).or_default();
        queue.closing = true;
        queue.items.push_back(Item {
            frame: Some(frame),
            work: Work::Sent(id),
        });
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
            self.queues.remove(key);
        }
        self.frames.remove(&frontend);
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
            self.ending.insert(*key);
            owners.extend(self.owners.owner(*key));
        }
        for batch in owners.chunks(LEAVE_BATCH) {
            self.make(Call::gone(batch.iter().cloned()), Purpose::Gone);
        }
    }

    /// How many users each node has, for `status` (every member listed).
    pub fn census(&self) -> BTreeMap<String, u64> {
        let mut nodes: BTreeMap<String, u64> = self.nodes.iter().map(|n| (n.clone(), 0)).collect();
        nodes.insert(self.node.clone(), 0);
        for (frontend, users) in self.chat.users_by_frontend() {
            if let Some(node) = self.owners.node_of(frontend) {
                *nodes.entry(node.to_string()).or_default() += users as u64;
            }
        }
        nodes
    }

    /// Once a second: a heartbeat (reaping vanished nodes when this one has been joined long
    /// enough to judge), and users nobody asserted again after a reset go.
    pub fn tick(&mut self, now: Instant, out: &mut Emitted) {
        if let Some((at, script)) = self.again
            && now >= at
        {
            self.again = None;
            match script {
                Script::Join => self.join(),
                _ => {
                    self.make(Call::users(), Purpose::Users);
                }
            }
        }
        if self.phase == Phase::Starting {
            return;
        }
        if !self.unclaimed_swept && self.ready_at.is_some_and(|at| now.duration_since(at) >= UNCLAIMED) {
            // Users read from Redis whose frontend never said hello: it is gone.
            self.unclaimed_swept = true;
            let unclaimed: Vec<SessionKey> = self
                .owners
                .local()
                .into_iter()
                .filter(|id| *id > FrontendId::MAX / 2)
                .flat_map(|f| {
                    self.chat.sessions_on(f).into_iter().map(move |s| SessionKey {
                        frontend: f,
                        session: s,
                    })
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
        let expired: Vec<String> = self
            .unconfirmed
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= CONFIRM)
            .map(|(owner, _)| owner.clone())
            .collect();
        let mut caused = Vec::new();
        for owner in expired {
            self.unconfirmed.remove(&owner);
            if let Some(key) = self.owners.key(&owner) {
                self.chat.left(key, true, &mut caused);
                self.chat.forget(key);
            }
        }
        out.push((None, caused));
        let beating = self
            .waiting
            .values()
            .chain(self.parked.values())
            .any(|m| matches!(m.purpose, Purpose::Beat));
        if self.phase == Phase::Healing || beating {
            return;
        }
        let reap = self.joined_at.is_some_and(|at| now.duration_since(at) >= PRESENCE_TTL);
        let written = Some(self.written).filter(|w| *w != Id::default());
        self.make(Call::beat(PRESENCE_TTL, written, reap), Purpose::Beat);
    }

    /// The kernel stops: the node leaves the cluster if nobody is logged in on it (so that an
    /// `up` right after a `down` need not wait for its presence to lapse).
    pub fn part(&mut self) {
        if self.phase == Phase::Ready {
            self.make(Call::part(), Purpose::Part);
        }
    }

    /// Whether a leave is on its way.
    pub fn parting(&self) -> bool {
        self.waiting.values().any(|m| matches!(m.purpose, Purpose::Part))
    }

    // ---- What comes back ----------------------------------------------------------------------

    /// Redis answered request `id` (`None`: an error, or an answer that makes no sense).
    pub fn answered(&mut self, id: u64, reply: Option<Reply>, now: Instant, out: &mut Emitted) {
        let Some(made) = self.waiting.remove(&id) else { return };
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
                Purpose::Line { .. } | Purpose::Gone | Purpose::Reclaim { .. } => {
                    self.parked.insert(id, made);
                }
                Purpose::Beat | Purpose::Part | Purpose::Join | Purpose::Users => {}
            }
            match self.phase {
                Phase::Starting => self.join(),
                _ => self.heal(),
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
            Purpose::Beat => {
                if let Some(Reply::Ok(fields)) = reply
                    && let Some(Beaten { reaped, members }) = Beaten::read(&fields)
                {
                    if !reaped.is_empty() {
                        tracing::warn!(nodes = ?reaped, "reaped nodes whose presence lapsed: their users are logged out");
                    }
                    self.nodes = members.into_iter().collect();
                }
            }
            Purpose::Part => {}
            Purpose::Gone => {}
            Purpose::Reclaim { key, claim } => {
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
            Purpose::Line { key, typed, logout } => {
                if logout
                    && matches!(reply, Some(Reply::Ok(_) | Reply::Dup))
                    && let Some(queue) = self.queues.get_mut(&key)
                {
                    // Logged out (or already, for a frame sent again): what follows is ignored.
                    queue.closing = true;
                }
                let shown = match reply {
                    Some(Reply::Ok(fields)) => {
                        if let Some(entry) = scripts::appended(&fields)
                            && let Some(queue) = self.queues.get_mut(&key)
                        {
                            queue.after = Some(entry);
                        }
                        None
                    }
                    Some(Reply::Dup) => None,
                    Some(Reply::Refused(why)) => Some(Event::Error(match why {
                        Refusal::Already => ChatError::AlreadyLogin,
                        Refusal::Invalid => ChatError::InvalidUsername,
                        Refusal::Taken => ChatError::UsernameTaken,
                        Refusal::First => ChatError::FirstLogin,
                        Refusal::NotFound => ChatError::NotFound(typed.unwrap_or_default()),
                        Refusal::Unknown(_) => ChatError::ServerBusy,
                    })),
                    _ => Some(Event::Error(ChatError::ServerBusy)),
                };
                if let Some(queue) = self.queues.get_mut(&key)
                    && let Some(item) = queue
                        .items
                        .iter_mut()
                        .find(|i| matches!(i.work, Work::Sent(s) if s == id))
                {
                    item.work = Work::Answered(shown);
                }
                self.advance(key, out);
            }
        }
    }

    /// Handles a session's queue from the front as far as it can: scripts held behind a local
    /// answer go once it is out; local answers and refusals go once the replica has the
    /// session's latest entry.
    fn advance(&mut self, key: SessionKey, out: &mut Emitted) {
        loop {
            self.send_deferred(key);
            let applied = self.applied;
            let Some(queue) = self.queues.get_mut(&key) else { return };
            let Some(front) = queue.items.front() else {
                // An ended session goes once its last entry (its logout, if any) is applied.
                let through = queue.after.is_none_or(|after| applied >= after);
                if self.ending.contains(&key) && through && self.chat.login_of(key).is_none() {
                    self.forget(key);
                }
                return;
            };
            let shows = matches!(front.work, Work::Local(_) | Work::Answered(Some(_)));
            let ready = match &front.work {
                Work::Sent(_) | Work::Deferred(..) => false,
                _ => !shows || queue.after.is_none_or(|after| applied >= after),
            };
            if !ready {
                if shows && let Some(after) = queue.after {
                    self.waiters.entry(after).or_default().insert(key);
                }
                return;
            }
            let closing = queue.closing;
            let item = queue.items.pop_front().expect("a front");
            let mut caused = Vec::new();
            match item.work {
                // After a logout nothing is answered, as on one host.
                _ if closing => {}
                // The replica answers what it can alone: `whoami`, `userlist`, `help`, syntax.
                Work::Local(line) => {
                    self.chat
                        .input(key, &line, crate::chat::Now { time: "", micros: 0 }, &mut caused);
                }
                Work::Answered(Some(event)) => self.chat.answer(key, event, &mut caused),
                _ => {}
            }
            if !caused.is_empty() {
                out.push((None, caused));
            }
            self.done(item.frame);
        }
    }

    /// Sends the scripts of `key`'s queue that wait for no local answer any more.
    fn send_deferred(&mut self, key: SessionKey) {
        let Some(queue) = self.queues.get_mut(&key) else { return };
        let mut ready = Vec::new();
        for (i, item) in queue.items.iter_mut().enumerate() {
            match &item.work {
                Work::Local(_) => break,
                Work::Deferred(..) => {
                    if let Work::Deferred(made) = std::mem::replace(&mut item.work, Work::Answered(None)) {
                        ready.push((i, made));
                    }
                }
                _ => {}
            }
        }
        for (i, made) in ready {
            let id = self.make(made.call, made.purpose);
            if let Some(item) = self.queues.get_mut(&key).and_then(|q| q.items.get_mut(i)) {
                item.work = Work::Sent(id);
            }
        }
    }

    fn forget(&mut self, key: SessionKey) {
        self.queues.remove(&key);
        self.ending.remove(&key);
        self.chat.forget(key);
    }

    /// The stream's entries, read from position `generation`.
    pub fn entries(&mut self, generation: u64, entries: Vec<(Id, String, Option<Entry>)>, out: &mut Emitted) {
        if generation != self.reading.generation || self.phase != Phase::Ready {
            return;
        }
        for (id, epoch, entry) in entries {
            if id <= self.applied && self.applied != Id::default() {
                continue;
            }
            if epoch != self.epoch {
                // Appended after Redis came back empty: this node has yet to join anew.
                self.heal();
                return;
            }
            self.applied = id;
            let mut caused = Vec::new();
            if let Some(entry) = entry {
                let deliver_only = self.deliver_only_until.is_some_and(|until| id <= until);
                self.apply(entry, deliver_only, &mut caused);
            }
            if self.deliver_only_until.is_some_and(|until| id >= until) {
                self.deliver_only_until = None;
            }
            if !caused.is_empty() {
                out.push((Some(self.origin_of(id)), caused));
            }
            // Sessions waiting for this entry go on.
            let reached: Vec<Id> = self.waiters.range(..=id).map(|(at, _)| *at).collect();
            for at in reached {
                for key in self.waiters.remove(&at).unwrap_or_default() {
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
        match entry {
            Entry::In {
                owner,
                name,
                seq,
                silent,
            } => {
                if local && !self.chat.has_session(key) {
                    // It ended before its login was read back: forgotten again with its logout.
                    self.ending.insert(key);
                }
                let known = self.chat.login_of(key).is_some_and(|l| l.name == name);
                self.unconfirmed.remove(&owner);
                if deliver_only {
                    // Its state is in the replica already; those here hear of it all the same.
                    if !silent {
                        self.chat.announce(Event::Login { name }, out);
                    }
                } else {
                    self.chat.joined(key, &name, seq, !(silent && known), out);
                }
            }
            Entry::Out { name, why, .. } => {
                if deliver_only {
                    self.chat.announce(Event::Logout { name }, out);
                    if local && why == Leave::Command {
                        // Its logout had not reached its frontend: it does now, and the session closes.
                        out.push(Output::Named { key, login: None });
                        out.push(Output::Close(key));
                    }
                    return;
                }
                if local && why == Leave::Reaped && !self.ending.contains(&key) {
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
                let queued = self.queues.get(&key).is_some_and(|q| !q.items.is_empty());
                if !local || (self.ending.contains(&key) && !queued) {
                    self.forget(key);
                }
            }
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

    /// Asserts `key`'s login in Redis again.
    fn reclaim(&mut self, key: SessionKey, login: &Login, claim: Claim) {
        let Some(owner) = self.owners.owner(key) else { return };
        self.make(Call::reclaim(owner, login, claim), Purpose::Reclaim { key, claim });
    }

    // ---- Joining, healing ---------------------------------------------------------------------

    fn heal(&mut self) {
        if self.phase != Phase::Ready {
            return;
        }
        tracing::warn!("Redis refused this node (it came back empty, or this node was reaped): joining again");
        self.phase = Phase::Healing;
        // Entries read meanwhile may be another epoch's: read again once healed.
        self.reading = Reading {
            generation: self.reading.generation + 1,
            from: self.applied,
        };
        self.join();
    }

    fn joined(&mut self, reply: Option<Reply>, now: Instant) {
        let Joined { epoch, delivered, kept } = match reply {
            Some(Reply::Ok(fields)) if let Some(joined) = Joined::read(&fields) => joined,
            Some(Reply::Busy(ms)) => {
                self.note = Some(format!(
                    "node name `{}` is held by another live instance (its presence lapses in {ms} ms): waiting",
                    self.node
                ));
                self.ask_again(Script::Join, now, Some(Duration::from_millis(ms)));
                return;
            }
            other => {
                self.note = Some(format!("could not join the cluster ({other:?}): trying again"));
                self.ask_again(Script::Join, now, None);
                return;
            }
        };
        self.backoff = AGAIN_FIRST;
        self.joined_at = Some(now);
        if self.phase == Phase::Starting {
            self.epoch = epoch;
            self.delivered = delivered;
            self.kept = kept;
            self.make(Call::users(), Purpose::Users);
            return;
        }
        let reset = epoch != self.epoch;
        self.epoch = epoch;
        self.phase = Phase::Ready;
        if reset {
            tracing::warn!("Redis came back empty: asserting this node's users again");
            let remote: Vec<String> = self.remote_owners();
            for owner in remote {
                self.unconfirmed.insert(owner, now);
            }
            self.applied = Id::default();
            self.written = Id::default();
            self.deliver_only_until = None;
            self.reading = Reading {
                generation: self.reading.generation + 1,
                from: Id::default(),
            };
        } else {
            tracing::warn!("this node was reaped while cut off: claiming its users' names again");
            // Read on from where it was; and what it may have missed for good (trimmed while it
            // was away), the current list of everyone logged in puts right.
            self.reading = Reading {
                generation: self.reading.generation + 1,
                from: self.applied,
            };
            self.make(Call::users(), Purpose::Users);
        }
        for frontend in self.owners.local() {
            for (session, login) in self.chat.logins_on(frontend) {
                let key = SessionKey { frontend, session };
                if !self.ending.contains(&key) {
                    self.reclaim(key, &login, if reset { Claim::Reset } else { Claim::Fenced });
                }
            }
        }
        let parked = std::mem::take(&mut self.parked);
        for (id, made) in parked {
            self.send(id, made);
        }
    }

    fn users(&mut self, reply: Option<Reply>, now: Instant, out: &mut Vec<Output>) {
        let Some(Everyone { last, mut users }) = reply.and_then(|r| match r {
            Reply::Ok(fields) => Everyone::read(&fields),
            _ => None,
        }) else {
            self.note = Some("could not read who is logged in: trying again".into());
            self.ask_again(Script::Users, now, None);
            return;
        };
        if self.phase != Phase::Starting {
            self.resync(users, out);
            return;
        }
        users.sort_by_key(|(_, login)| login.seq);
        for (owner, login) in users {
            if let Some(key) = self.owners.key(&owner) {
                self.chat.joined(key, &login.name, login.seq, false, out);
            }
        }
        // Where its previous kernel left off, if that is older: what came between is delivered
        // (not applied: the state read has it).
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
        self.reading = Reading {
            generation: self.reading.generation + 1,
            from,
        };
        self.phase = Phase::Ready;
        self.ready_at = Some(now);
        self.note = None;
    }

    /// Puts the replica's users of other nodes right by the list of everyone logged in: after a
    /// fence, what the node missed for good.
    fn resync(&mut self, users: Vec<(String, Login)>, out: &mut Vec<Output>) {
        let listed: HashMap<&str, (u64, &str)> = users
            .iter()
            .map(|(owner, login)| (owner.as_str(), (login.seq, login.name.as_str())))
            .collect();
        for owner in self.remote_owners() {
            if !listed.contains_key(owner.as_str())
                && let Some(key) = self.owners.key(&owner)
            {
                self.chat.left(key, true, out);
                self.chat.forget(key);
            }
        }
        for (owner, (seq, name)) in listed {
            if let Some(key) = self.owners.key(owner)
                && !self.owners.is_local(key.frontend)
            {
                self.chat.joined(key, name, seq, true, out);
            }
        }
    }

    /// Asks again for a join or for everyone logged in, after `at_least` (a lapsing presence) or
    /// the backoff.
    fn ask_again(&mut self, script: Script, now: Instant, at_least: Option<Duration>) {
        let wait = at_least.map_or(self.backoff, |w| w.clamp(AGAIN_FIRST, AGAIN_LAST));
        self.backoff = (self.backoff * 2).min(AGAIN_LAST);
        self.again = Some((now + wait, script));
    }

    fn remote_owners(&self) -> Vec<String> {
        let mut owners = Vec::new();
        for (frontend, (node, _)) in &self.owners.of {
            if *node == self.node {
                continue;
            }
            for (session, _) in self.chat.logins_on(*frontend) {
                owners.extend(self.owners.owner(SessionKey {
                    frontend: *frontend,
                    session,
                }));
            }
        }
        owners
    }
}

/// Refusals this version does not know, logged at most a few a second (every line of a newer
/// script's could meet one).
static UNKNOWN_REFUSALS: std::sync::LazyLock<Warnings> = std::sync::LazyLock::new(|| Warnings::new(1, 5));

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
