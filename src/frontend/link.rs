//! The frontend's link to the kernel: connect (and reconnect, with backoff), say hello with every
//! live session, then pump frames up and events down, with heartbeats both ways.
//!
//! Clients never notice the kernel going away: their lines wait in the upstream queue while the
//! link reconnects, every frame the kernel has not acknowledged is sent again after the hello, and
//! events whose origin was already seen are dropped, so each shows once (see [`crate::wire`]). A
//! kernel silent for [`wire::HEARTBEAT_TIMEOUT`] (hung, or stopped) counts as gone.
//!
//! Events go to clients only as fast as the clients that read take them: before reading more
//! from the kernel the link waits for clients that fell behind (see
//! [`Sessions::hold_back`](super::session::Sessions::hold_back)), and the kernel, whose writes
//! then wait, slows its inputs in turn.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::session::Sessions;
use crate::chat::{Event, SessionId};
use crate::heartbeat::{Beat, SILENT_TICKS};
use crate::quiet::{ReadHalf, WriteHalf};
use crate::wire::{self, Downstream, Origin, To, Upstream};

/// First reconnect delay; doubles up to [`BACKOFF_MAX`]. Connecting to a missing Unix socket costs
/// next to nothing, and a restarted kernel applies no input until every frontend is back.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(50);
/// How long the kernel may take to answer a hello.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to keep reading a kernel connection whose write side failed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes gathered into one write to the kernel at most.
const WRITE_BATCH: usize = 64 << 10;
/// Frames sent but not yet acknowledged, at most; past it the link stops taking from the
/// upstream queue, which then fills and answers `server busy`.
pub const MAX_UNACKED: usize = super::session::UPSTREAM;

/// Everything the link needs; `render` turns an event into this frontend's wire format.
pub struct Link<R> {
    pub name: String,
    pub socket: PathBuf,
    /// Where the process before this one left off (kernel epoch, frame number), if it adopted
    /// that process's clients: the kernel sends again what came after.
    pub resume: Option<(u64, u64)>,
    pub sessions: Arc<Sessions>,
    pub render: R,
}

/// A frame sent and not yet acknowledged: its number, the client whose line it is (so that
/// client may send more once it is acknowledged), and its bytes.
struct Sent {
    seq: u64,
    line_of: Option<SessionId>,
    frame: Bytes,
}

/// Frames the kernel has not acknowledged, oldest first, and the number of the next one.
struct Unacked {
    frames: VecDeque<Sent>,
    next: u64,
}

/// State that outlives kernel connections.
struct Memory {
    /// This process among all frontends of this name, ever.
    instance: u64,
    unacked: Mutex<Unacked>,
    /// Signalled when acknowledgements make room.
    room: Notify,
    /// The last numbered kernel frame handled (kernel epoch, number).
    position: Mutex<Option<(u64, u64)>>,
}

impl<R> Link<R>
where
    R: Fn(&Event) -> Bytes,
{
    /// Runs until `shutdown`. `ready` is called once, on the first welcome.
    pub async fn run(self, mut upstream: mpsc::Receiver<Upstream>, shutdown: CancellationToken, ready: impl FnOnce()) {
        let memory = Memory {
            instance: crate::instance::new(),
            unacked: Mutex::new(Unacked {
                frames: VecDeque::new(),
                next: 1,
            }),
            room: Notify::new(),
            position: Mutex::new(self.resume),
        };
        // The newest origin seen per frontend instance, and in which connection it was seen.
        let mut seen: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut ready = Some(ready);
        let mut backoff = BACKOFF_MIN;
        let mut connection = 0u64;
        loop {
            if shutdown.is_cancelled() && self.sessions.is_empty() {
                return;
            }
            // An attempt under way is finished even when we are stopping: a stop that comes
            // between our hello and the welcome still owes the kernel a goodbye, or it keeps our
            // users for the grace. The caller bounds how long it waits for us.
            let connected = self.connect(&memory).await;
            let (frames, write) = match connected {
                Ok(halves) => halves,
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), retry_in = ?backoff, "kernel not reachable");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            backoff = BACKOFF_MIN;
            connection += 1;
            // Sent again (unacknowledged by the last kernel) and waiting (typed meanwhile).
            let replayed = memory.unacked.lock().frames.len();
            let queued = upstream.len();
            tracing::info!(
                socket = %self.socket.display(),
                sessions = self.sessions.len(),
                replayed,
                queued,
                "connected to the kernel"
            );
            self.sessions.set_kernel(true);
            if let Some(ready) = ready.take() {
                ready();
            }
            let receiving = self.receive(frames, &memory, &mut seen, connection);
            tokio::pin!(receiving);
            let error = tokio::select! {
                e = &mut receiving => e,
                e = send(write, &mut upstream, &memory, &self.sessions, &shutdown) => {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    // A dead kernel fails our writes before we have read all it wrote; what it
                    // wrote may be acknowledged already, so read it to the end first.
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, &mut receiving).await;
                    e
                }
            };
            self.sessions.set_kernel(false);
            tracing::warn!(error = %format!("{error:#}"), "lost the kernel; reconnecting");
        }
    }

    /// Connects, says hello with every live session, sends again every unacknowledged frame, and
    /// waits for the welcome.
    async fn connect(&self, memory: &Memory) -> Result<(FramedRead<ReadHalf, LengthDelimitedCodec>, WriteHalf)> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        let (read, mut write) = crate::quiet::split(stream)?;
        let mut buf = BytesMut::new();
        {
            let unacked = memory.unacked.lock();
            let first = unacked.frames.front().map_or(unacked.next, |sent| sent.seq);
            Upstream::Hello {
                version: wire::VERSION,
                frontend: self.name.clone(),
                instance: memory.instance,
                first,
                sessions: self.sessions.snapshot(),
                resume: *memory.position.lock(),
            }
            .encode(&mut buf);
            for sent in &unacked.frames {
                buf.extend_from_slice(&sent.frame);
            }
        }
        write.write_all(&buf).await.context("sending hello")?;
        let mut frames = FramedRead::new(read, wire::codec());
        let body = tokio::time::timeout(WELCOME_TIMEOUT, frames.next())
            .await
            .context("no welcome from the kernel")?
            .ok_or_else(|| anyhow!("the kernel closed the connection instead of welcoming us"))??;
        match Downstream::decode(&body)? {
            Downstream::Welcome { version: wire::VERSION } => Ok((frames, write)),
            other => bail!("expected a welcome, got {other:?}"),
        }
    }

    /// Applies the kernel's frames until the connection ends; returns why it ended.
    async fn receive(
        &self,
        mut frames: FramedRead<ReadHalf, LengthDelimitedCodec>,
        memory: &Memory,
        seen: &mut HashMap<u64, (u64, u64)>,
        connection: u64,
    ) -> anyhow::Error {
        let mut beat = Beat::new();
        // The kernel epoch and the number of the next numbered frame, once the kernel says.
        let mut numbering: Option<(u64, u64)> = None;
        loop {
            let body = tokio::select! {
                body = frames.next() => match body {
                    Some(body) => body,
                    None => return anyhow!("the kernel closed the connection"),
                },
                silent = beat.tick() => {
                    if silent >= SILENT_TICKS {
                        return anyhow!("the kernel sent nothing for {:?}: hung", wire::HEARTBEAT_TIMEOUT);
                    }
                    continue;
                }
            };
            beat.active();
            let message = match body
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(Downstream::decode(&b)?))
            {
                Ok(message) => message,
                Err(e) => return e.context("malformed frame from the kernel"),
            };
            let numbered = matches!(
                message,
                Downstream::Deliver { .. } | Downstream::Named { .. } | Downstream::Close { .. }
            );
            if let Err(e) = self.apply(message, memory, &mut numbering, seen, connection) {
                return e;
            }
            if numbered && let Some((epoch, next)) = &mut numbering {
                // Handled: recorded for the next kernel connection and the next process.
                *memory.position.lock() = Some((*epoch, *next));
                self.sessions.handled(*epoch, *next);
                *next += 1;
                // Clients that read slowly set the pace; the others get their turn.
                self.sessions.hold_back().await;
                tokio::task::coop::consume_budget().await;
            }
        }
    }
    /// Applies one frame of the kernel's (but a welcome, which is an error here); `numbering`:
    /// the kernel epoch and the number of the next numbered frame, once a `Sync` says.
    fn apply(
        &self,
        message: Downstream,
        memory: &Memory,
        numbering: &mut Option<(u64, u64)>,
        seen: &mut HashMap<u64, (u64, u64)>,
        connection: u64,
    ) -> Result<(), anyhow::Error> {
        let seq = numbering.map_or(0, |(_, next)| next);
        match message {
            Downstream::Deliver { to, origin, event } => {
                if origin.is_none_or(|o| fresh(seen, o, connection)) {
                    let message = (self.render)(&event);
                    match to {
                        To::Only(to) => self.sessions.deliver(&to, &message, seq),
                        To::LoggedIn => self.sessions.deliver_logged_in(&message, seq),
                    }
                }
            }
            Downstream::Named { session, login } => self.sessions.set_login(session, login),
            Downstream::Close { session } => self.sessions.close(session),
            Downstream::Sync { epoch, next, applied } => {
                *numbering = Some((epoch, next));
                self.sessions.numbered_by(epoch);
                // Everything before `next` is behind us: a process that dies before handling
                // any frame still tells its successor where to start.
                let before = next.saturating_sub(1);
                *memory.position.lock() = Some((epoch, before));
                self.sessions.handled(epoch, before);
                let lost = self
                    .sessions
                    .lines_lost_after(applied, &(self.render)(&Event::LineLost));
                if lost > 0 {
                    tracing::warn!(
                        clients = lost,
                        "lines that died with the previous process: their senders are told"
                    );
                }
            }
            Downstream::Ack { seq } => {
                let mut unacked = memory.unacked.lock();
                while let Some(sent) = unacked.frames.pop_front_if(|sent| sent.seq <= seq) {
                    if let Some(session) = sent.line_of {
                        self.sessions.acked(session);
                    }
                }
                drop(unacked);
                self.sessions.acks_done();
                memory.room.notify_one();
            }
            Downstream::Heartbeat => {}
            Downstream::Welcome { .. } => return Err(anyhow!("a second welcome from the kernel")),
            Downstream::Census { .. } => {} // never asked for
        }
        Ok(())
    }
}

/// True unless an event of this origin was already delivered by an earlier kernel connection
/// (one input may cause several events, all of them from one connection).
fn fresh(seen: &mut HashMap<u64, (u64, u64)>, origin: Origin, connection: u64) -> bool {
    let last = seen.entry(origin.instance).or_insert((0, connection));
    if origin.seq > last.0 || (origin.seq == last.0 && last.1 == connection) {
        *last = (origin.seq, connection);
        true
    } else {
        false
    }
}

/// Numbers, remembers and writes queued upstream messages, gathering whatever is waiting into
/// one write; a heartbeat after a second of nothing to send; a goodbye on `shutdown` (the kernel
/// then logs this frontend's users out at once, rather than keep them for its next process).
async fn send(
    mut write: WriteHalf,
    upstream: &mut mpsc::Receiver<Upstream>,
    memory: &Memory,
    sessions: &Sessions,
    shutdown: &CancellationToken,
) -> anyhow::Error {
    let mut buf = BytesMut::new();
    let mut heartbeat = BytesMut::new();
    Upstream::Heartbeat.encode(&mut heartbeat);
    let mut beat = Beat::new();
    loop {
        let next = async {
            while memory.unacked.lock().frames.len() >= MAX_UNACKED {
                memory.room.notified().await;
            }
            upstream.recv().await
        };
        let first = tokio::select! {
            _ = shutdown.cancelled() => {
                let mut bye = BytesMut::new();
                Upstream::Bye.encode(&mut bye);
                let _ = tokio::time::timeout(Duration::from_secs(1), write.write_all(&bye)).await;
                return anyhow!("stopping");
            }
            first = next => match first {
                Some(first) => first,
                None => return anyhow!("every client sender is gone"),
            },
            idle = beat.tick() => {
                if idle > 0
                    && let Err(e) = write.write_all(&heartbeat).await
                {
                    return anyhow::Error::from(e).context("writing to the kernel");
                }
                continue;
            }
        };
        beat.active();
        let mut message = Some(first);
        {
            let mut unacked = memory.unacked.lock();
            while let Some(m) = message.take() {
                let start = buf.len();
                m.encode(&mut buf);
                let seq = unacked.next;
                unacked.next += 1;
                let line_of = match &m {
                    Upstream::Line { session, .. } => {
                        sessions.line_numbered(*session, seq);
                        Some(*session)
                    }
                    _ => None,
                };
                unacked.frames.push_back(Sent {
                    seq,
                    line_of,
                    frame: Bytes::copy_from_slice(&buf[start..]),
                });
                if buf.len() < WRITE_BATCH && unacked.frames.len() < MAX_UNACKED {
                    message = upstream.try_recv().ok();
                }
            }
        }
        if let Err(e) = write.write_all(&buf).await {
            return anyhow::Error::from(e).context("writing to the kernel");
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_delivered_from_one_connection_only() {
        let mut seen = HashMap::new();
        let o = |seq| Origin { instance: 7, seq };
        assert!(fresh(&mut seen, o(1), 1));
        assert!(fresh(&mut seen, o(1), 1), "one input, several events");
        assert!(fresh(&mut seen, o(2), 1));
        // A new kernel replays 2 and 3: 2 was seen, 3 was not.
        assert!(!fresh(&mut seen, o(2), 2));
        assert!(!fresh(&mut seen, o(1), 2));
        assert!(fresh(&mut seen, o(3), 2));
        assert!(fresh(&mut seen, o(3), 2));
        // Another instance of the same frontend starts over.
        assert!(fresh(&mut seen, Origin { instance: 9, seq: 1 }, 2));
    }
}
