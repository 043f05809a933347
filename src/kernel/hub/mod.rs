//! The hub: the one task that owns the chat (through its [`Engine`]: the local chat, or this
//! host's member of a cluster), applies every frontend's frames to it in arrival order, and
//! encodes what it causes into one frame per frontend per event.
//!
//! - [`engine`]: what frames are applied to, and [`cluster`] its cluster member;
//! - [`attach`]: a frontend saying hello, new or back, and its numbering and replay ([`feed`]);
//! - [`order`]: what waits for what (the restore window after a start, a frontend whose previous
//!   connection has not ended);
//! - [`encode`]: outputs into frames, batches to the writers, acknowledgements;
//! - [`detach`]: frontends let go of, and their grace.
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

mod attach;
mod cluster;
mod detach;
mod encode;
mod engine;
mod feed;
mod order;

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
use crate::chat::{FrontendId, Login, SessionId};
use crate::wire::{self, Upstream};
pub use cluster::Clustered;
use detach::{Detached, LoggedOut};
use engine::{Effects, Engine, Local};
use feed::Feed;
use order::Restoring;

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
    /// An observer asks how many users each frontend (and each other node) has.
    Census {
        reply: tokio::sync::oneshot::Sender<Census>,
    },
    /// What a cluster member's link to Redis brought back.
    Cluster(crate::cluster::link::Incoming),
}

/// Logged-in users by frontend name (a frontend let go of counts under its name), and by node
/// (a cluster's other hosts).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub frontends: Vec<(String, u64)>,
    pub nodes: Vec<(String, u64)>,
}

/// A frontend attached to the hub.
struct Frontend {
    name: String,
    instance: u64,
    outbox: mpsc::UnboundedSender<(u64, Bytes)>,
    /// Frames encoded since the last hand-over to its writer.
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

/// What woke the hub.
enum Woken {
    Input(Input),
    /// A timer, or a writer's progress: look again.
    Again,
    /// Every input sender is gone.
    Closed,
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
    let engine: Box<dyn Engine> = match cluster {
        Some(clustered) => Box::new(clustered),
        None => Box::new(Local::default()),
    };
    let mut hub = Hub::new(engine);
    let mut restoring = Restoring::new(expect);
    // Told once a stop's flush is written.
    let mut flushing: Option<tokio::sync::oneshot::Sender<()>> = None;
    loop {
        // `written` is signalled by the writers after each write, so that waiting
        // acknowledgements and a paused hub look again.
        let mut next = match hub
            .wait(&mut inputs, &written, &mut restoring, flushing.is_some())
            .await
        {
            Woken::Input(input) => Some(input),
            Woken::Again => None,
            Woken::Closed => return,
        };
        let mut handled = 0;
        while let Some(input) = next.take() {
            match input {
                Input::Flush { done } => {
                    hub.ack_now();
                    hub.part();
                    flushing = Some(done);
                }
                input => restoring.route(input, &mut hub),
            }
            handled += 1;
            if handled < BATCH && !hub.any_behind() {
                next = inputs.try_recv().ok();
            }
        }
        restoring.apply_held(&mut hub);
        hub.end_batch(&mut flushing);
        // The writers and readers of this thread run before the next batch, if there is one
        // already (otherwise the hub waits for input anyway).
        if !inputs.is_empty() {
            tokio::task::yield_now().await;
        }
    }
}

/// The hub's state: the engine, and what it knows of every frontend.
struct Hub {
    /// Tells this kernel process's frame numbers apart from any other's.
    epoch: u64,
    engine: Box<dyn Engine>,
    /// What the engine's current step causes; kept from step to step, cleared.
    fx: Effects,
    /// Events from elsewhere (a cluster's stream entries) applied since the last flush (the
    /// newest), and those whose outputs wait to be written, as a ledger keyed by entry number.
    entries_applied: Option<u64>,
    entries_unwritten: Ledger,
    frontends: HashMap<FrontendId, Frontend>,
    detached: HashMap<FrontendId, Detached>,
    /// By frontend name.
    logged_out: HashMap<String, LoggedOut>,
    /// For each frontend past [`HIGH_WATER`]: the last batch seen written, and since when.
    stalls: HashMap<FrontendId, (u64, Instant)>,
    clock: Clock,
    batch: u64,
    unconfirmed: Ledger,
    /// The hello of a frontend whose previous connection has not ended yet, and the frames after
    /// it, held until that connection's last frames are applied.
    held: VecDeque<Input>,
    holding: HashSet<FrontendId>,
}

impl Hub {
    fn new(engine: Box<dyn Engine>) -> Self {
        Self {
            epoch: crate::instance::new(),
            engine,
            fx: Effects::default(),
            entries_applied: None,
            entries_unwritten: Ledger::default(),
            frontends: HashMap::new(),
            detached: HashMap::new(),
            logged_out: HashMap::new(),
            stalls: HashMap::new(),
            clock: Clock::default(),
            batch: 0,
            unconfirmed: Ledger::default(),
            held: VecDeque::new(),
            holding: HashSet::new(),
        }
    }

    /// Waits for an input, or for a timer or a writer to give the hub something to do (which it
    /// does before returning).
    async fn wait(
        &mut self,
        inputs: &mut mpsc::Receiver<Input>,
        written: &Notify,
        restoring: &mut Restoring,
        flushing: bool,
    ) -> Woken {
        let stall = self.stalled_by(Instant::now());
        let expiry = self.next_expiry();
        let ack = self.frontends.values().filter_map(|f| f.ack.map(|(_, due)| due)).min();
        let window = restoring.window(self.engine.ready());
        let at = |deadline: Option<Instant>| tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now));
        tokio::select! {
            input = inputs.recv(), if stall.is_none() => match input {
                Some(input) => Woken::Input(input),
                None => Woken::Closed,
            },
            _ = written.notified(), if stall.is_some() || !self.unconfirmed.is_empty() || flushing => Woken::Again,
            _ = at(stall), if stall.is_some() => {
                self.let_go_of_stalled(Instant::now());
                Woken::Again
            }
            _ = at(expiry), if expiry.is_some() => {
                self.expire(Instant::now());
                Woken::Again
            }
            _ = at(ack), if ack.is_some() => Woken::Again,
            _ = at(window), if window.is_some() => {
                restoring.window_over();
                Woken::Again
            }
        }
    }

    /// Applies `input`, unless it waits for a previous connection of its frontend to end (see
    /// [`hold`](Self::hold)).
    fn handle(&mut self, input: Input) {
        if let Some(input) = self.hold(input) {
            self.apply(input);
        }
    }

    fn apply(&mut self, input: Input) {
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
                let f = Frontend {
                    name,
                    instance,
                    outbox,
                    pending: BytesMut::new(),
                    progress,
                    applied: None,
                    ack: None,
                    feed: Feed::default(),
                    last_applied: 0,
                };
                self.attach(frontend, f, sessions, resume);
            }
            Input::Frame { frontend, seq, message } => {
                let Some(f) = self.frontends.get(&frontend) else {
                    return; // let go of; its reader has not noticed yet
                };
                let from = engine::From {
                    frontend,
                    seq,
                    instance: f.instance,
                };
                let mut fx = std::mem::take(&mut self.fx);
                self.engine.frame(from, message, self.clock.now(), &mut fx);
                self.emit(&mut fx);
                self.fx = fx;
            }
            Input::Detach { frontend, wait } => {
                if let Some(f) = self.frontends.remove(&frontend) {
                    let name = f.name.clone();
                    if wait {
                        self.detach(frontend, f);
                    } else {
                        self.frontend_gone(frontend);
                    }
                    self.unhold(&name);
                }
            }
            // Taken by the run loop; answered at once if it ever got here.
            Input::Flush { done } => {
                let _ = done.send(());
            }
            Input::Census { reply } => {
                let _ = reply.send(self.census());
            }
            Input::Cluster(incoming) => self.incoming(incoming),
        }
    }

    /// What the engine's link brought back.
    fn incoming(&mut self, incoming: crate::cluster::link::Incoming) {
        let mut fx = std::mem::take(&mut self.fx);
        self.engine.incoming(incoming, &mut fx);
        if let Some(entry) = self.engine.applied() {
            self.entries_applied = Some(entry);
        }
        self.emit(&mut fx);
        self.fx = fx;
    }

    /// A frontend is gone for good: its users are logged out.
    fn frontend_gone(&mut self, frontend: FrontendId) {
        let mut fx = std::mem::take(&mut self.fx);
        self.engine.gone(frontend, &mut fx);
        self.emit(&mut fx);
        self.fx = fx;
    }

    /// The kernel stops: the engine leaves whatever it is part of.
    fn part(&mut self) {
        let mut fx = std::mem::take(&mut self.fx);
        self.engine.part(&mut fx);
        self.emit(&mut fx);
        self.fx = fx;
    }

    fn census(&self) -> Census {
        let chat = self.engine.chat();
        let mut users: HashMap<String, u64> = HashMap::new();
        let named = self.frontends.iter().map(|(id, f)| (id, &f.name));
        for (id, name) in named.chain(self.detached.iter().map(|(id, d)| (id, &d.name))) {
            *users.entry(name.clone()).or_default() += chat.users_on(*id) as u64;
        }
        Census {
            frontends: users.into_iter().collect(),
            nodes: self.engine.nodes(),
        }
    }
}

#[cfg(test)]
mod tests;
