//! The hub: the one task that owns the [`Chat`], applies every frontend's frames to it in arrival
//! order, and encodes its outputs into one frame per frontend per event.
//!
//! Frames for a frontend are gathered while more input is waiting and handed to its writer as one
//! buffer (a *batch*), so a burst of `msgall` costs each frontend a few large writes, not one per
//! event.
//!
//! A frontend's frame is acknowledged only once everything it caused has been written to every
//! frontend it went to: if the kernel dies before, the frame is sent again to the next kernel, and
//! the frontends drop what they already got (see [`wire`](crate::wire)). So nothing is lost.
//!
//! After a restart the hub holds every frame until each frontend the supervisor expects has said
//! hello (or [`RESTORE_WINDOW`] has passed): a frame applied before a frontend's hello would never
//! reach that frontend's users.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc};

use super::clock::Clock;
use crate::chat::{Chat, FrontendId, Login, Output, SessionId, SessionKey};
use crate::wire::{self, Downstream, Origin, Upstream};

/// Inputs waiting for the hub, across all frontends; a full queue pushes back on their readers.
pub const QUEUE: usize = 4096;
/// Batches waiting for one frontend's writer. A frontend this far behind is disconnected rather
/// than allowed to grow the kernel's memory; it reconnects and says hello again.
pub const OUTBOX: usize = 4096;
/// Inputs handled before the gathered frames are handed over even if more input is waiting.
const BATCH: usize = 256;
/// Longest wait for the expected frontends' hellos after a start.
pub const RESTORE_WINDOW: Duration = Duration::from_secs(2);

/// What the frontend connections tell the hub.
pub enum Input {
    /// A frontend said hello. `outbox` is the only sender to its writer, which records in
    /// `written` the last batch it has written.
    Attach {
        frontend: FrontendId,
        name: String,
        instance: u64,
        sessions: Vec<(SessionId, Option<Login>)>,
        outbox: mpsc::Sender<(u64, Bytes)>,
        written: Arc<AtomicU64>,
    },
    /// A frame other than hello, with its number.
    Frame {
        frontend: FrontendId,
        seq: u64,
        message: Upstream,
    },
    /// The frontend's connection ended.
    Detach { frontend: FrontendId },
    /// An observer asks how many users each frontend has.
    Census {
        reply: tokio::sync::oneshot::Sender<Vec<(String, u64)>>,
    },
}

struct Frontend {
    name: String,
    instance: u64,
    outbox: mpsc::Sender<(u64, Bytes)>,
    /// Frames encoded since the last hand-over.
    pending: BytesMut,
    /// The last batch its writer has written.
    written: Arc<AtomicU64>,
    /// Its newest applied frame, to acknowledge once what it caused is written.
    applied: Option<u64>,
}

/// An acknowledgement waiting for writes: `seq` of `frontend` is confirmed once every frontend in
/// `after` has written its batch.
struct Unconfirmed {
    frontend: FrontendId,
    seq: u64,
    after: Vec<(FrontendId, u64)>,
}

/// Runs the hub until every input sender is gone. `expect` names the frontends whose hellos the
/// hub waits for before applying any frame.
pub async fn run(mut inputs: mpsc::Receiver<Input>, expect: Vec<String>, written: Arc<Notify>) {
    // `written` is signalled by the writers after each write, so that waiting acknowledgements
    // are looked at again.
    let mut hub = Hub::default();
    let mut restoring = Restoring {
        expect: expect.into_iter().collect(),
        held: VecDeque::new(),
        until: tokio::time::Instant::now() + RESTORE_WINDOW,
    };
    let mut restored = restoring.expect.is_empty();
    loop {
        let input = tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => Some(input),
                None => return,
            },
            _ = written.notified(), if !hub.unconfirmed.is_empty() => None,
            _ = tokio::time::sleep_until(restoring.until), if !restored => {
                tracing::warn!(missing = ?restoring.expect, "restore window over without every frontend's hello");
                restored = true;
                None
            }
        };
        let mut next = input;
        let mut handled = 0;
        while let Some(input) = next.take() {
            if restored {
                hub.handle(input);
            } else {
                restored = restoring.take(input, &mut hub);
            }
            // Held frames go first, before anything that arrives after them.
            if restored {
                for held in restoring.held.drain(..) {
                    hub.handle(held);
                }
            }
            handled += 1;
            if handled < BATCH {
                next = inputs.try_recv().ok();
            }
        }
        if restored {
            for held in restoring.held.drain(..) {
                hub.handle(held);
            }
        }
        hub.confirm();
        hub.flush();
    }
}

/// Frames held until every expected frontend is back.
struct Restoring {
    expect: HashSet<String>,
    held: VecDeque<Input>,
    until: tokio::time::Instant,
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
    chat: Chat,
    frontends: HashMap<FrontendId, Frontend>,
    clock: Clock,
    out: Vec<Output>,
    /// The input being applied, stamped on what it causes.
    origin: Option<Origin>,
    batch: u64,
    unconfirmed: VecDeque<Unconfirmed>,
}

impl Hub {
    fn handle(&mut self, input: Input) {
        self.origin = None;
        match input {
            Input::Attach {
                frontend,
                name,
                instance,
                sessions,
                outbox,
                written,
            } => {
                self.frontends.insert(
                    frontend,
                    Frontend {
                        name,
                        instance,
                        outbox,
                        pending: BytesMut::new(),
                        written,
                        applied: None,
                    },
                );
                self.chat.restore(frontend, sessions, &mut self.out);
            }
            Input::Frame { frontend, seq, message } => {
                let Some(f) = self.frontends.get_mut(&frontend) else {
                    return; // dropped as too slow; its reader has not noticed yet
                };
                f.applied = Some(seq);
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
                        let now = self.clock.now();
                        if !self.chat.input(key(session), &line, now, &mut self.out) {
                            tracing::debug!(frontend, session, "input for an unknown session ignored");
                        }
                    }
                    Upstream::Closed { session } => self.chat.close(key(session), &mut self.out),
                    Upstream::Hello { .. } | Upstream::Census => {
                        unreachable!("the connection refuses these after its hello")
                    }
                }
            }
            Input::Detach { frontend } => {
                if self.frontends.remove(&frontend).is_some() {
                    self.chat.frontend_gone(frontend, &mut self.out);
                }
            }
            Input::Census { reply } => {
                let users = self
                    .frontends
                    .iter()
                    .map(|(id, f)| (f.name.clone(), self.chat.users_on(*id) as u64))
                    .collect();
                let _ = reply.send(users);
            }
        }
        self.encode();
    }

    /// Encodes the outputs into each frontend's pending buffer.
    fn encode(&mut self) {
        for output in self.out.drain(..) {
            match output {
                Output::Deliver { event, to } => {
                    let body = wire::encode_event(&event);
                    for (frontend, sessions) in to {
                        if let Some(f) = self.frontends.get_mut(&frontend) {
                            wire::encode_deliver(&mut f.pending, Some(&sessions), self.origin, &body);
                        }
                    }
                }
                Output::Broadcast { event, to } => {
                    let body = wire::encode_event(&event);
                    for (frontend, _) in to {
                        if let Some(f) = self.frontends.get_mut(&frontend) {
                            wire::encode_deliver(&mut f.pending, None, self.origin, &body);
                        }
                    }
                }
                Output::Named { key, login } => {
                    if let Some(f) = self.frontends.get_mut(&key.frontend) {
                        Downstream::Named {
                            session: key.session,
                            login,
                        }
                        .encode(&mut f.pending);
                    }
                }
                Output::Close(key) => {
                    if let Some(f) = self.frontends.get_mut(&key.frontend) {
                        Downstream::Close { session: key.session }.encode(&mut f.pending);
                    }
                }
            }
        }
    }

    /// Hands each frontend its pending frames as one batch, and files the acknowledgements of the
    /// frames applied since. A frontend whose outbox is full is dropped, and its users logged
    /// out, which may produce more frames for the others.
    fn flush(&mut self) {
        loop {
            self.batch += 1;
            let batch = self.batch;
            let mut slow = Vec::new();
            let mut after = Vec::new();
            for (id, f) in &mut self.frontends {
                if f.pending.is_empty() {
                    continue;
                }
                if f.outbox.try_send((batch, f.pending.split().freeze())).is_err() {
                    slow.push(*id);
                } else {
                    after.push((*id, batch));
                }
            }
            for (id, f) in &mut self.frontends {
                if let Some(seq) = f.applied.take() {
                    self.unconfirmed.push_back(Unconfirmed {
                        frontend: *id,
                        seq,
                        after: after.clone(),
                    });
                }
            }
            if slow.is_empty() {
                return;
            }
            self.origin = None;
            for id in slow {
                if let Some(f) = self.frontends.remove(&id) {
                    tracing::warn!(frontend = %f.name, id, "frontend is not reading; disconnecting it");
                }
                self.chat.frontend_gone(id, &mut self.out);
            }
            self.encode();
        }
    }

    /// Acknowledges, in order, every frame whose effects have been written everywhere.
    fn confirm(&mut self) {
        while let Some(first) = self.unconfirmed.front() {
            let done = first.after.iter().all(|(id, batch)| {
                self.frontends
                    .get(id)
                    .is_none_or(|f| f.written.load(Ordering::Acquire) >= *batch)
            });
            if !done {
                return;
            }
            let Unconfirmed { frontend, seq, .. } = self.unconfirmed.pop_front().expect("checked");
            if let Some(f) = self.frontends.get_mut(&frontend) {
                Downstream::Ack { seq }.encode(&mut f.pending);
            }
        }
    }
}
