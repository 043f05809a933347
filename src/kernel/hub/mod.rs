//! The hub: the one task that owns the [`Chat`], applies every frontend's frames to it in arrival
//! order, and encodes its outputs into one frame per frontend per event.
//!
//! Frames for a frontend are gathered while more input is waiting and handed to its writer as one
//! buffer (a *batch*), so a burst of `msgall` costs each frontend a few large writes, not one per
//! event.
//!
//! A frontend's frame is acknowledged only once everything it caused has been written to every
//! frontend it went to: if the kernel dies before, the frame is sent again to the next kernel, and
//! the frontends drop what they already got (see [`wire`](crate::wire)). So nothing is lost. An
//! acknowledgement rides with the next frames for its frontend, or goes alone after [`ACK_DELAY`]:
//! on its own it would cost the frontend a wake-up for nothing urgent.
//!
//! After a restart the hub holds every frame until each frontend the supervisor expects has said
//! hello (or [`RESTORE_WINDOW`] has passed): a frame applied before a frontend's hello would never
//! reach that frontend's users.
//!
//! # Flow control
//! What waits for a frontend's writer is counted in bytes. Past [`HIGH_WATER`] for any frontend,
//! the hub takes no more input until it is written: a busy frontend slows the kernel, which slows
//! every frontend's readers, which slow the clients that send, and nothing piles up. A frontend
//! that takes nothing for [`STALL`] meanwhile, or past [`MAX_QUEUED`], is let go of: its
//! connection is closed and its sessions are kept for [`GRACE`], so that when it says hello again
//! (as after a kernel restart) nobody sees a logout or a login. A frontend silent past its
//! heartbeat is let go of the same way, and so is one whose connection ends without a goodbye (it
//! crashed: its next process adopts its clients); one that says goodbye is gone, and its users are
//! logged out at once. That is [`detach`]. What each frontend is sent is numbered and the recent
//! part kept ([`feed`]), so that a frontend's next process gets again what the last one had not
//! handled.

mod cluster;
mod detach;
mod feed;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use super::ledger::Ledger;
use crate::chat::{Chat, FrontendId, Login, Output, SessionId, SessionKey};
use crate::wire::{self, Downstream, Origin, Upstream};
pub use cluster::Clustered;
use detach::{Detached, LoggedOut};
use feed::Feed;

/// Inputs waiting for the hub, across all frontends; a full queue pushes back on their readers.
pub const QUEUE: usize = 4096;
/// Bytes waiting for one frontend's writer past which the hub takes no input.
pub const HIGH_WATER: usize = 4 << 20;
/// Bytes waiting for one frontend past which it is let go of.
pub const MAX_QUEUED: usize = 64 << 20;
/// A frontend past [`HIGH_WATER`] that takes no byte for this long is let go of.
pub const STALL: Duration = wire::HEARTBEAT_TIMEOUT;
/// How long the sessions of a frontend the kernel let go of wait for it to say hello again.
pub const GRACE: Duration = Duration::from_secs(5);
/// Inputs handled before the gathered frames are handed over even if more input is waiting.
const BATCH: usize = 256;
/// Longest an acknowledgement waits for other frames to the same frontend to ride with. A
/// frontend holds what is unacknowledged (at most [`MAX_UNACKED`](crate::frontend::link::MAX_UNACKED)
/// frames) a little longer, and sends it again if the kernel dies meanwhile.
pub const ACK_DELAY: Duration = Duration::from_millis(5);
/// Longest wait for the expected frontends' hellos after a start.
pub const RESTORE_WINDOW: Duration = Duration::from_secs(2);

/// What a frontend's connection and the hub share about its writer.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes handed to the writer and not yet written.
    pub queued: AtomicUsize,
    /// The last batch written.
    pub written: AtomicU64,
    /// The connection ended.
    pub closed: AtomicBool,
    /// Cancelled by the hub to let the frontend go: the connection closes.
    pub let_go: CancellationToken,
}

/// What the frontend connections tell the hub.
pub enum Input {
    /// A frontend said hello. `outbox` is the only sender to its writer.
    Attach {
        frontend: FrontendId,
        name: String,
        instance: u64,
        sessions: Vec<(SessionId, Option<Login>)>,
        /// Where the frontend (or the process before it) left off, to be sent again what came
        /// after: this kernel's epoch and a frame number.
        resume: Option<(u64, u64)>,
        outbox: mpsc::UnboundedSender<(u64, Bytes)>,
        progress: Arc<Progress>,
    },
    /// A frame other than hello, with its number.
    Frame {
        frontend: FrontendId,
        seq: u64,
        message: Upstream,
    },
    /// The frontend's connection ended: it said goodbye (`wait` false: its users are logged out
    /// now), or it crashed or went silent (`wait`: its sessions wait [`GRACE`] for its hello).
    Detach { frontend: FrontendId, wait: bool },
    /// The kernel is stopping: send every acknowledgement now, and say when everything handed to
    /// the writers is written (so that the frontends replay nothing that was applied).
    Flush { done: tokio::sync::oneshot::Sender<()> },
    /// An observer asks how many users each frontend has.
    Census {
        reply: tokio::sync::oneshot::Sender<Vec<(String, u64)>>,
    },
    /// What a cluster member's link to Redis brought back.
    Cluster(crate::cluster::link::Incoming),
}

struct Frontend {
    name: String,
    instance: u64,
    outbox: mpsc::UnboundedSender<(u64, Bytes)>,
    /// Frames encoded since the last hand-over.
    pending: BytesMut,
    progress: Arc<Progress>,
    /// Its newest applied frame, to acknowledge once what it caused is written.
    applied: Option<u64>,
    /// Its newest frame confirmed and not yet acknowledged, and when the acknowledgement is due.
    ack: Option<(u64, Instant)>,
    /// What it is sent, numbered, and the recent part kept.
    feed: Feed,
    /// The last of its frames applied, ever (told to its next connection).
    last_applied: u64,
}

impl Frontend {
    /// Bytes waiting for it: handed over and not written, and not yet handed over.
    fn waiting(&self) -> usize {
        self.progress.queued.load(Ordering::Acquire) + self.pending.len()
    }

    fn behind(&self) -> bool {
        self.waiting() > HIGH_WATER && !self.progress.closed.load(Ordering::Acquire)
    }
}

/// Runs the hub until every input sender is gone. `expect` names the frontends whose hellos the
/// hub waits for before applying any frame.
///
/// With `cluster`, the hub is its host's member of a cluster: until the member has joined and
/// read who is logged in, it holds everything but what Redis sends.
pub async fn run(
    mut inputs: mpsc::Receiver<Input>,
    expect: Vec<String>,
    written: Arc<Notify>,
    cluster: Option<Clustered>,
) {
    // `written` is signalled by the writers after each write, so that waiting acknowledgements
    // and a paused hub look again.
    let mut hub = Hub {
        epoch: crate::instance::new(),
        cluster: cluster.map(Box::new),
        ..Hub::default()
    };
    hub.emit(Vec::new());
    // Held until the cluster member is ready.
    let mut unready: VecDeque<Input> = VecDeque::new();
    let mut restoring = Restoring {
        expect: expect.into_iter().collect(),
        held: VecDeque::new(),
        until: Instant::now() + RESTORE_WINDOW,
    };
    let mut restored = restoring.expect.is_empty();
    // Told once a stop's flush is written.
    let mut flushing: Option<tokio::sync::oneshot::Sender<()>> = None;
    loop {
        let stall = hub.stalled_by(Instant::now());
        let expiry = hub.next_expiry();
        let ack = hub.frontends.values().filter_map(|f| f.ack.map(|(_, due)| due)).min();
        let input = tokio::select! {
            input = inputs.recv(), if stall.is_none() => match input {
                Some(input) => Some(input),
                None => return,
            },
            _ = written.notified(), if stall.is_some() || !hub.unconfirmed.is_empty() || flushing.is_some() => None,
            _ = tokio::time::sleep_until(stall.unwrap_or_else(Instant::now)), if stall.is_some() => {
                hub.let_go_of_stalled(Instant::now());
                None
            }
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now)), if expiry.is_some() => {
                hub.expire(Instant::now());
                None
            }
            _ = tokio::time::sleep_until(ack.unwrap_or_else(Instant::now)), if ack.is_some() => None,
            _ = tokio::time::sleep_until(restoring.until), if !restored && hub.cluster_ready() => {
                tracing::warn!(missing = ?restoring.expect, "restore window over without every frontend's hello");
                restored = true;
                None
            }
        };
        let mut next = input;
        let mut handled = 0;
        while let Some(input) = next.take() {
            match input {
                Input::Flush { done } => {
                    hub.ack_now();
                    hub.cluster_part();
                    flushing = Some(done);
                }
                // Entries wait for the frontends' hellos, like their frames: what one causes for a
                // frontend not attached yet would go nowhere.
                Input::Cluster(entries @ crate::cluster::link::Incoming::Entries { .. }) if !restored => {
                    restored = restoring.take(Input::Cluster(entries), &mut hub);
                }
                Input::Cluster(incoming) => {
                    let was_ready = hub.cluster_ready();
                    hub.cluster_incoming(incoming);
                    if !was_ready && hub.cluster_ready() {
                        // The hellos are counted from now.
                        restoring.until = Instant::now() + RESTORE_WINDOW;
                    }
                    if hub.cluster_ready() {
                        for held in unready.drain(..) {
                            match held {
                                held if restored => hub.handle(held),
                                held => restored = restoring.take(held, &mut hub),
                            }
                        }
                    }
                }
                input if !hub.cluster_ready() => unready.push_back(input),
                input if restored => hub.handle(input),
                input => restored = restoring.take(input, &mut hub),
            }
            // Held frames go first, before anything that arrives after them.
            if restored {
                for held in restoring.held.drain(..) {
                    hub.handle(held);
                }
            }
            handled += 1;
            if handled < BATCH && !hub.any_behind() {
                next = inputs.try_recv().ok();
            }
        }
        if restored {
            for held in restoring.held.drain(..) {
                hub.handle(held);
            }
        }
        let now = Instant::now();
        hub.confirm(now);
        hub.flush(now);
        // What this batch applied without causing any output is confirmed already: readied now,
        // its acknowledgement rides with the next frames.
        hub.confirm(now);
        if flushing.is_some() {
            hub.ack_now();
            hub.flush(now);
            if hub.frontends.values().all(|f| f.waiting() == 0) && !hub.cluster_parting() {
                let _ = flushing.take().map(|done| done.send(()));
            }
        }
        // The writers and readers of this thread run before the next batch, if there is one
        // already (otherwise the hub waits for input anyway).
        if !inputs.is_empty() {
            tokio::task::yield_now().await;
        }
    }
}

/// Frames held until every expected frontend is back.
struct Restoring {
    expect: HashSet<String>,
    held: VecDeque<Input>,
    until: Instant,
}

impl Restoring {
    /// Applies a hello at once and holds anything else; true once nobody is missing.
    fn take(&mut self, input: Input, hub: &mut Hub) -> bool {
        match input {
            Input::Attach { ref name, .. } => {
                self.expect.remove(name);
                hub.handle(input);
            }
            other => self.held.push_back(other),
        }
        self.expect.is_empty()
    }
}

#[derive(Default)]
struct Hub {
    /// Tells this kernel process's frame numbers apart from any other's.
    epoch: u64,
    /// The chat, unless this kernel is a cluster member (whose replica is its member's).
    chat: Chat,
    cluster: Option<Box<Clustered>>,
    /// A cluster member's stream entries applied since the last flush (the newest), and those
    /// whose outputs wait to be written, as a ledger keyed by entry number.
    entries_applied: Option<u64>,
    entries_unwritten: Ledger,
    frontends: HashMap<FrontendId, Frontend>,
    detached: HashMap<FrontendId, Detached>,
    /// By frontend name.
    logged_out: HashMap<String, LoggedOut>,
    /// For each frontend past [`HIGH_WATER`]: the last batch seen written, and since when.
    stalls: HashMap<FrontendId, (u64, Instant)>,
    clock: Clock,
    out: Vec<Output>,
    /// The input being applied, stamped on what it causes.
    origin: Option<Origin>,
    batch: u64,
    unconfirmed: Ledger,
    /// The hello of a frontend whose previous connection has not ended yet, and the frames after
    /// it, held until that connection's last frames are applied.
    held: VecDeque<Input>,
    holding: HashSet<FrontendId>,
}

impl Hub {
    /// Whether the cluster member (if any) has joined and read who is logged in.
    fn cluster_ready(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.member.ready())
    }

    fn handle(&mut self, input: Input) {
        if let Some(input) = self.hold(input) {
            self.apply(input);
        }
    }

    /// Holds what a frontend sends while its previous connection (a process that died a moment
    /// ago, say) has not ended: the frames still unread on that connection come first. Returns
    /// `input` unless it was held. The previous connection's end releases them (see
    /// [`Hub::release`]).
    fn hold(&mut self, input: Input) -> Option<Input> {
        match &input {
            Input::Attach { frontend, name, .. } if self.frontends.values().any(|f| &f.name == name) => {
                tracing::info!(frontend = %name, "its previous connection has not ended yet: waiting for it");
                self.holding.insert(*frontend);
            }
            Input::Frame { frontend, .. } | Input::Detach { frontend, .. } if self.holding.contains(frontend) => {}
            _ => return Some(input),
        }
        self.held.push_back(input);
        None
    }

    /// Applies what was held for the frontends named `name`, in order.
    fn release(&mut self, name: &str) {
        let ids: HashSet<FrontendId> = self
            .held
            .iter()
            .filter_map(|input| match input {
                Input::Attach { frontend, name: n, .. } if n == name => Some(*frontend),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        self.holding.retain(|id| !ids.contains(id));
        let (mine, others): (VecDeque<Input>, VecDeque<Input>) = self.held.drain(..).partition(|input| match input {
            Input::Attach { frontend, .. } | Input::Frame { frontend, .. } | Input::Detach { frontend, .. } => {
                ids.contains(frontend)
            }
            _ => false,
        });
        self.held = others;
        for input in mine {
            self.encode();
            self.handle(input);
        }
    }

    fn apply(&mut self, input: Input) {
        self.origin = None;
        match input {
            Input::Attach {
                frontend,
                name,
                instance,
                sessions,
                resume,
                outbox,
                progress,
            } => {
                let before: Vec<FrontendId> = self
                    .detached
                    .iter()
                    .filter(|(_, d)| d.name == name)
                    .map(|(id, _)| *id)
                    .collect();
                self.frontends.insert(
                    frontend,
                    Frontend {
                        name,
                        instance,
                        outbox,
                        pending: BytesMut::new(),
                        progress,
                        applied: None,
                        ack: None,
                        feed: Feed::default(),
                        last_applied: 0,
                    },
                );
                match before.split_last() {
                    Some((&old, older)) => {
                        for id in older {
                            self.detached.remove(id);
                            self.frontend_gone(*id);
                        }
                        let mut away = self.detached.remove(&old).expect("listed above");
                        if !away.pending.is_empty() {
                            away.feed.keep(away.pending.split().freeze(), Instant::now());
                        }
                        let name = self.frontends[&frontend].name.clone();
                        tracing::info!(frontend = %name, "frontend is back: its sessions carry on");
                        match self.cluster {
                            Some(_) => {
                                self.resume(frontend, away.feed, away.last_applied, resume);
                                self.cluster_attach(frontend, &name, sessions, None);
                            }
                            None => {
                                self.chat.reattach(old, frontend, sessions, &mut self.out);
                                self.resume(frontend, away.feed, away.last_applied, resume);
                            }
                        }
                    }
                    None => {
                        self.sync(frontend, 0);
                        let now = Instant::now();
                        self.logged_out.retain(|_, l| l.until > now);
                        let name = self.frontends[&frontend].name.clone();
                        match (self.logged_out.remove(&name), self.cluster.is_some()) {
                            (gone, true) => self.cluster_attach(frontend, &name, sessions, gone.map(|g| g.sessions)),
                            (Some(gone), false) => {
                                self.chat
                                    .restore_after_logout(frontend, sessions, &gone.sessions, &mut self.out)
                            }
                            (None, false) => self.chat.restore(frontend, sessions, &mut self.out),
                        }
                    }
                }
            }
            Input::Frame { frontend, seq, message } => {
                let Some(f) = self.frontends.get_mut(&frontend) else {
                    return; // let go of; its reader has not noticed yet
                };
                if self.cluster.is_some() {
                    let instance = f.instance;
                    self.cluster_frame(
                        cluster::From {
                            frontend,
                            seq,
                            instance,
                        },
                        message,
                    );
                    return;
                }
                f.applied = Some(seq);
                f.last_applied = seq;
                self.origin = Some(Origin {
                    instance: f.instance,
                    seq,
                });
                let key = |session| SessionKey { frontend, session };
                match message {
                    Upstream::Open { session } => {
                        self.chat.open(key(session));
                    }
                    Upstream::Line { session, line } => {
                        tracing::trace!(frontend, session, seq, %line, "line");
                        let now = self.clock.now();
                        if !self.chat.input(key(session), &line, now, &mut self.out) {
                            tracing::debug!(frontend, session, "input for an unknown session ignored");
                        }
                    }
                    Upstream::Closed { session } => self.chat.close(key(session), &mut self.out),
                    Upstream::Hello { .. } | Upstream::Census | Upstream::Heartbeat | Upstream::Bye => {
                        unreachable!("the connection keeps these from the hub")
                    }
                }
            }
            Input::Detach { frontend, wait } => {
                if let Some(f) = self.frontends.remove(&frontend) {
                    let name = f.name.clone();
                    if wait {
                        self.detach(frontend, f);
                    } else {
                        self.frontend_gone(frontend);
                    }
                    self.encode();
                    self.release(&name);
                }
            }
            // Taken by the run loop; answered at once if it ever got here.
            Input::Flush { done } => {
                let _ = done.send(());
            }
            Input::Census { reply } => {
                let mut users: HashMap<String, u64> = HashMap::new();
                let chat = self.cluster.as_ref().map_or(&self.chat, |c| &c.member.chat);
                let named = self.frontends.iter().map(|(id, f)| (id, &f.name));
                for (id, name) in named.chain(self.detached.iter().map(|(id, d)| (id, &d.name))) {
                    *users.entry(name.clone()).or_default() += chat.users_on(*id) as u64;
                }
                let mut users: Vec<(String, u64)> = users.into_iter().collect();
                users.extend(self.cluster_census());
                let _ = reply.send(users);
            }
            Input::Cluster(incoming) => self.cluster_incoming(incoming),
        }
        self.encode();
    }

    /// Starts a new frontend's numbering: its frames from here on are numbered from its feed's
    /// next number.
    fn sync(&mut self, frontend: FrontendId, applied: u64) {
        let epoch = self.epoch;
        let f = self.frontends.get_mut(&frontend).expect("attached");
        Downstream::Sync {
            epoch,
            next: f.feed.next(),
            applied,
        }
        .encode(&mut f.pending);
    }

    /// A frontend came back with `feed`, what it was sent while away: if its hello says where it
    /// (or its previous process) left off, and that is still kept, it gets what it has not handled
    /// first; then the logins of its sessions, which its new process does not know yet, and the
    /// rest numbered as usual.
    fn resume(&mut self, frontend: FrontendId, feed: Feed, applied: u64, resume: Option<(u64, u64)>) {
        let epoch = self.epoch;
        let replay = resume.and_then(|(from, after)| (from == epoch).then(|| (after, feed.since(after))));
        let f = self.frontends.get_mut(&frontend).expect("attached");
        f.feed = feed;
        match replay {
            Some((after, Some(frames))) => {
                // The logins first, unnumbered: the replay is for sessions as they are now.
                let mut rest = Vec::with_capacity(self.out.len());
                for output in self.out.drain(..) {
                    match output {
                        Output::Named { key, login } if key.frontend == frontend => Downstream::Named {
                            session: key.session,
                            login,
                        }
                        .encode(&mut f.pending),
                        other => rest.push(other),
                    }
                }
                self.out = rest;
                Downstream::Sync {
                    epoch,
                    next: after + 1,
                    applied,
                }
                .encode(&mut f.pending);
                tracing::info!(frontend = %f.name, from = after + 1, to = f.feed.next(), bytes = frames.len(), "sending again what its last process did not handle");
                f.pending.extend_from_slice(&frames);
                // What is pending is not numbered anew (the replayed frames have their numbers):
                // hand it over now, kept out of the feed.
                let bytes = f.pending.split().freeze();
                f.progress.queued.fetch_add(bytes.len(), Ordering::AcqRel);
                let _ = f.outbox.send((self.batch, bytes));
            }
            Some((after, None)) => {
                tracing::warn!(frontend = %f.name, after, next = f.feed.next(), "cannot send again what its last process did not handle: no longer kept");
                self.sync(frontend, applied);
            }
            None => self.sync(frontend, applied),
        }
    }

    /// Where a frontend's frames go: its pending buffer and feed, attached or away.
    fn sink(&mut self, id: FrontendId) -> Option<(&mut BytesMut, &mut Feed)> {
        if let Some(f) = self.frontends.get_mut(&id) {
            return Some((&mut f.pending, &mut f.feed));
        }
        self.detached.get_mut(&id).map(|d| (&mut d.pending, &mut d.feed))
    }

    /// Encodes the outputs into each frontend's pending buffer, numbered.
    fn encode(&mut self) {
        let origin = self.origin;
        let out = std::mem::take(&mut self.out);
        for output in &out {
            match output {
                Output::Deliver { event, to } => {
                    let body = wire::encode_event(event);
                    for (frontend, sessions) in to {
                        if let Some((pending, feed)) = self.sink(*frontend) {
                            wire::encode_deliver(pending, Some(sessions), origin, &body);
                            feed.numbered();
                        }
                    }
                }
                Output::Broadcast { event, to } => {
                    tracing::trace!(?event, to = ?to.iter().map(|(f, _)| *f).collect::<Vec<_>>(), "broadcast");
                    let body = wire::encode_event(event);
                    for (frontend, _) in to {
                        if let Some((pending, feed)) = self.sink(*frontend) {
                            wire::encode_deliver(pending, None, origin, &body);
                            feed.numbered();
                        }
                    }
                }
                Output::Named { key, login } => {
                    if let Some((pending, feed)) = self.sink(key.frontend) {
                        Downstream::Named {
                            session: key.session,
                            login: login.clone(),
                        }
                        .encode(pending);
                        feed.numbered();
                    }
                }
                Output::Close(key) => {
                    if let Some((pending, feed)) = self.sink(key.frontend) {
                        Downstream::Close { session: key.session }.encode(pending);
                        feed.numbered();
                    }
                }
            }
        }
        self.out = out;
        self.out.clear();
    }

    /// Hands each frontend its pending frames as one batch, with its acknowledgement if one waits
    /// (or alone, once due), and files the acknowledgements of the frames applied since. A
    /// frontend past [`MAX_QUEUED`] is let go of instead.
    fn flush(&mut self, now: Instant) {
        self.batch += 1;
        let batch = self.batch;
        let mut after = Vec::new();
        let mut over = Vec::new();
        for (id, f) in &mut self.frontends {
            if let Some((seq, due)) = f.ack
                && (!f.pending.is_empty() || due <= now)
            {
                Downstream::Ack { seq }.encode(&mut f.pending);
                f.ack = None;
            }
            if f.pending.is_empty() {
                continue;
            }
            if f.waiting() > MAX_QUEUED {
                over.push(*id);
                continue;
            }
            let bytes = f.pending.split().freeze();
            f.feed.keep(bytes.clone(), now);
            f.progress.queued.fetch_add(bytes.len(), Ordering::AcqRel);
            // A writer that is gone has a detach on its way.
            let _ = f.outbox.send((batch, bytes));
            after.push((*id, batch));
        }
        // Frontends that are away: what they are sent is kept for their replay.
        for d in self.detached.values_mut() {
            if !d.pending.is_empty() {
                d.feed.keep(d.pending.split().freeze(), now);
            }
        }
        for (id, f) in &mut self.frontends {
            if let Some(seq) = f.applied.take() {
                self.unconfirmed.record(*id, seq, &after);
            }
        }
        if let Some(entry) = self.entries_applied.take() {
            self.entries_unwritten.record(0, entry, &after);
        }
        for id in over {
            self.let_go(id, "its queue passed the bound");
        }
    }

    /// Makes every held acknowledgement due now.
    fn ack_now(&mut self) {
        let now = Instant::now();
        for f in self.frontends.values_mut() {
            if let Some((_, due)) = &mut f.ack {
                *due = now;
            }
        }
    }

    /// Readies, in order, the acknowledgement of every frame whose effects have been written
    /// everywhere; [`Hub::flush`] sends it.
    fn confirm(&mut self, now: Instant) {
        let frontends = &mut self.frontends;
        let mut acks = Vec::new();
        self.unconfirmed.confirm(
            |id| frontends.get(&id).map(|f| f.progress.written.load(Ordering::Acquire)),
            |frontend, seq| acks.push((frontend, seq)),
        );
        for (frontend, seq) in acks {
            if let Some(f) = frontends.get_mut(&frontend) {
                let due = f.ack.map_or(now + ACK_DELAY, |(_, due)| due);
                f.ack = Some((seq, due));
            }
        }
        if let Some(c) = self.cluster.as_mut() {
            let written = |id| {
                frontends
                    .get(&id)
                    .map(|f: &Frontend| f.progress.written.load(Ordering::Acquire))
            };
            self.entries_unwritten.confirm(written, |_, n| {
                c.member.written(crate::cluster::entry::Id::from_number(n))
            });
        }
    }
}

#[cfg(test)]
mod tests;
