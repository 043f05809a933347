//! The hub: the one task that owns the [`Chat`], applies every frontend's frames to it in arrival
//! order, and encodes its outputs into one frame per frontend per event.
//!
//! Frames for a frontend are gathered while more input is waiting and handed to its writer as one
//! buffer, so a burst of `msgall` costs each frontend a few large writes, not one per event.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::chat::{Chat, FrontendId, Login, Now, Output, SessionId, SessionKey};
use crate::wire::{self, Downstream, Upstream};

/// Inputs waiting for the hub, across all frontends; a full queue pushes back on their readers.
pub const QUEUE: usize = 4096;
/// Buffers waiting for one frontend's writer. A frontend this far behind is disconnected rather
/// than allowed to grow the kernel's memory; it reconnects and says hello again.
pub const OUTBOX: usize = 4096;
/// Inputs handled before the gathered frames are handed over even if more input is waiting.
const BATCH: usize = 256;

/// What the frontend connections tell the hub.
pub enum Input {
    /// A frontend said hello. `outbox` is the only sender to its writer.
    Attach {
        frontend: FrontendId,
        name: String,
        sessions: Vec<(SessionId, Option<Login>)>,
        outbox: mpsc::Sender<Bytes>,
    },
    /// A frame other than hello.
    Frame { frontend: FrontendId, message: Upstream },
    /// The frontend's connection ended.
    Detach { frontend: FrontendId },
}

struct Frontend {
    name: String,
    outbox: mpsc::Sender<Bytes>,
    /// Frames encoded since the last hand-over.
    pending: BytesMut,
}

pub async fn run(mut inputs: mpsc::Receiver<Input>) {
    let mut hub = Hub::default();
    while let Some(input) = inputs.recv().await {
        hub.handle(input);
        for _ in 1..BATCH {
            match inputs.try_recv() {
                Ok(input) => hub.handle(input),
                Err(_) => break,
            }
        }
        hub.flush();
    }
}

#[derive(Default)]
struct Hub {
    chat: Chat,
    frontends: HashMap<FrontendId, Frontend>,
    clock: Clock,
    out: Vec<Output>,
}

impl Hub {
    fn handle(&mut self, input: Input) {
        match input {
            Input::Attach {
                frontend,
                name,
                sessions,
                outbox,
            } => {
                self.frontends.insert(
                    frontend,
                    Frontend {
                        name,
                        outbox,
                        pending: BytesMut::new(),
                    },
                );
                self.chat.restore(frontend, sessions, &mut self.out);
            }
            Input::Frame { frontend, message } => {
                if !self.frontends.contains_key(&frontend) {
                    return; // dropped as too slow; its reader has not noticed yet
                }
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
                    Upstream::Census => {
                        let users = self
                            .frontends
                            .iter()
                            .map(|(id, f)| (f.name.clone(), self.chat.users_on(*id) as u64))
                            .collect();
                        let f = self.frontends.get_mut(&frontend).expect("checked above");
                        Downstream::Census { users }.encode(&mut f.pending);
                    }
                    Upstream::Hello { .. } => unreachable!("the connection refuses a second hello"),
                }
            }
            Input::Detach { frontend } => {
                if self.frontends.remove(&frontend).is_some() {
                    self.chat.frontend_gone(frontend, &mut self.out);
                }
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
                            wire::encode_deliver(&mut f.pending, &sessions, &body);
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

    /// Hands each frontend its pending frames. A frontend whose outbox is full is dropped, and its
    /// users logged out, which may produce more frames for the others.
    fn flush(&mut self) {
        loop {
            let mut slow = Vec::new();
            for (id, f) in &mut self.frontends {
                if f.pending.is_empty() {
                    continue;
                }
                if f.outbox.try_send(f.pending.split().freeze()).is_err() {
                    slow.push(*id);
                }
            }
            if slow.is_empty() {
                return;
            }
            for id in slow {
                if let Some(f) = self.frontends.remove(&id) {
                    tracing::warn!(frontend = %f.name, id, "frontend is not reading; disconnecting it");
                }
                self.chat.frontend_gone(id, &mut self.out);
            }
            self.encode();
        }
    }
}

/// Wall-clock time for events, formatted once per second rather than once per message.
#[derive(Default)]
struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    fn now(&mut self) -> Now<'_> {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let second = micros / 1_000_000;
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = chrono::Local::now().format("%H:%M:%S").to_string();
        }
        Now {
            time: &self.text,
            micros,
        }
    }
}
