//! One frontend's connection to the kernel: a reader that decodes its frames for the hub, and a
//! writer that drains the outbox the hub fills. When either ends, so does the other, and the hub
//! is told once that the frontend is gone.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::hub::{self, Input, Progress};
use crate::chat::FrontendId;
use crate::heartbeat::{Beat, SILENT_TICKS};
use crate::quiet::{ReadHalf, WriteHalf};
use crate::wire::{self, Downstream, Upstream};

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes gathered into one write at most.
const WRITE_BATCH: usize = 64 << 10;
/// How long to keep reading a frontend connection whose write side failed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn serve(
    id: FrontendId,
    stream: UnixStream,
    hub: mpsc::Sender<Input>,
    written: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let (read, write) = match crate::quiet::split(stream) {
        Ok(halves) => halves,
        Err(e) => {
            tracing::warn!(frontend = id, error = %e, "could not set up a connection");
            return;
        }
    };
    let mut frames = FramedRead::new(read, wire::codec());
    let Hello {
        name,
        instance,
        first,
        sessions,
        resume,
    } = match first_frame(id, &mut frames).await {
        First::Hello(hello) => hello,
        First::Census => return census(write, &hub).await,
        First::Refused => return,
    };
    tracing::info!(frontend = %name, id, sessions = sessions.len(), "frontend attached");

    // The hub holds the only sender once we pass it on; it bounds what waits in bytes (see
    // `hub::Progress`) and cancels `let_go` to end this connection.
    let (outbox, outbox_rx) = mpsc::unbounded_channel();
    let mut welcome = BytesMut::new();
    Downstream::Welcome { version: wire::VERSION }.encode(&mut welcome);
    let progress = Arc::new(Progress::default());
    progress.queued.store(welcome.len(), Ordering::Release);
    outbox.send((0, welcome.freeze())).expect("the receiver is here");
    let attach = Input::Attach {
        frontend: id,
        name: name.clone(),
        instance,
        sessions,
        resume,
        outbox,
        progress: progress.clone(),
    };
    if hub.send(attach).await.is_err() {
        return;
    }

    // Whether its sessions wait for its next process: unless it said goodbye, a frontend whose
    // connection ends crashed or hung, and its clients are parked with the supervisor.
    let reading = read_frames(id, &name, first, frames, &hub);
    tokio::pin!(reading);
    let wait = tokio::select! {
        end = &mut reading => waits(end, &name, id),
        result = write_outbox(write, outbox_rx, &progress, &written) => match result {
            Ok(()) => true,
            Err(e) => {
                // A frontend that stopped fails our writes before we have read all it wrote: its
                // last lines, and its goodbye, may wait in our receive buffer. Read them first.
                match tokio::time::timeout(DRAIN_TIMEOUT, &mut reading).await {
                    Ok(ReadEnd::Bye) => false,
                    _ => {
                        tracing::warn!(frontend = %name, error = %e, "lost frontend; its sessions wait {:?} for it", hub::GRACE);
                        true
                    }
                }
            }
        },
        _ = progress.let_go.cancelled() => false,
        _ = shutdown.cancelled() => false,
    };
    progress.closed.store(true, Ordering::Release);
    written.notify_one();
    tracing::info!(frontend = %name, id, "frontend detached");
    let _ = hub.send(Input::Detach { frontend: id, wait }).await;
}

/// A frontend's hello: who it is and every live session.
struct Hello {
    name: String,
    instance: u64,
    first: u64,
    sessions: Vec<(crate::chat::SessionId, Option<crate::chat::Login>)>,
    resume: Option<(u64, u64)>,
}

/// What a connection's first frame says it is.
enum First {
    Hello(Hello),
    /// An observer asking how many users each frontend has.
    Census,
    /// Anything else, or nothing in time (logged).
    Refused,
}

/// Reads the first frame: a hello of this protocol version, or a census request.
async fn first_frame(
    id: FrontendId,
    frames: &mut FramedRead<ReadHalf, tokio_util::codec::LengthDelimitedCodec>,
) -> First {
    let body = match tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await {
        Ok(Some(Ok(body))) => body,
        Ok(Some(Err(e))) => {
            tracing::warn!(frontend = id, error = %e, "refused a connection with a bad first frame");
            return First::Refused;
        }
        Ok(None) => return First::Refused,
        Err(_) => {
            tracing::warn!(frontend = id, "refused a connection that sent no hello in time");
            return First::Refused;
        }
    };
    match Upstream::decode(&body) {
        Ok(Upstream::Hello {
            version: wire::VERSION,
            frontend,
            instance,
            first,
            sessions,
            resume,
        }) => First::Hello(Hello {
            name: frontend,
            instance,
            first,
            sessions,
            resume,
        }),
        Ok(Upstream::Census) => First::Census,
        Ok(Upstream::Hello { version, frontend, .. }) => {
            tracing::warn!(%frontend, version, expected = wire::VERSION, "refused a frontend speaking another protocol version");
            First::Refused
        }
        Ok(other) => {
            tracing::warn!(frontend = id, frame = ?other, "refused a connection that did not start with hello");
            First::Refused
        }
        Err(e) => {
            tracing::warn!(frontend = id, error = %e, "refused a connection whose first frame is malformed");
            First::Refused
        }
    }
}

/// Answers an observer (the supervisor's `status`) whose first frame is a census request: one
/// Census frame, then the connection closes. It is no frontend and changes nothing.
async fn census(mut stream: WriteHalf, hub: &mpsc::Sender<Input>) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if hub.send(Input::Census { reply }).await.is_err() {
        return;
    }
    let Ok(hub::Census { frontends, nodes }) = answer.await else {
        return;
    };
    let mut frame = BytesMut::new();
    Downstream::Census { frontends, nodes }.encode(&mut frame);
    let _ = stream.write_all(&frame).await;
}

/// Whether the sessions of a frontend whose frames ended so wait for its next process.
fn waits(end: ReadEnd, name: &str, id: FrontendId) -> bool {
    match end {
        ReadEnd::Bye => false,
        ReadEnd::Closed => {
            tracing::warn!(frontend = %name, id, "frontend closed its connection without a goodbye; its sessions wait {:?} for it", hub::GRACE);
            true
        }
        ReadEnd::Silent => {
            tracing::warn!(frontend = %name, id, "frontend sent nothing for {:?}: hung; its sessions wait for it", wire::HEARTBEAT_TIMEOUT);
            true
        }
        ReadEnd::Malformed(e) => {
            tracing::warn!(frontend = %name, error = %e, "disconnecting frontend");
            false
        }
    }
}

/// Why a frontend's frames ended.
enum ReadEnd {
    /// It said goodbye: it stops for good.
    Bye,
    /// It closed the connection without a goodbye.
    Closed,
    /// It sent nothing, not even a heartbeat, for [`wire::HEARTBEAT_TIMEOUT`].
    Silent,
    Malformed(anyhow::Error),
}

/// Forwards decoded frames to the hub until the frontend hangs up, goes silent or sends a
/// malformed frame. Heartbeats only prove it alive.
async fn read_frames(
    id: FrontendId,
    name: &str,
    first: u64,
    mut frames: FramedRead<ReadHalf, tokio_util::codec::LengthDelimitedCodec>,
    hub: &mpsc::Sender<Input>,
) -> ReadEnd {
    let mut seq = first;
    let mut beat = Beat::new();
    loop {
        let body = tokio::select! {
            body = frames.next() => match body {
                Some(Ok(body)) => body,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return ReadEnd::Malformed(anyhow::anyhow!("malformed frame: {e}"));
                }
                Some(Err(_)) | None => break,
            },
            silent = beat.tick() => {
                if silent >= SILENT_TICKS {
                    return ReadEnd::Silent;
                }
                continue;
            }
        };
        beat.active();
        let message = match Upstream::decode(&body) {
            Ok(message) => message,
            Err(e) => return ReadEnd::Malformed(anyhow::anyhow!("malformed frame: {e}")),
        };
        match message {
            Upstream::Heartbeat => continue,
            Upstream::Bye => return ReadEnd::Bye,
            Upstream::Hello { .. } | Upstream::Census => {
                return ReadEnd::Malformed(anyhow::anyhow!("malformed frame: {message:?} after the hello"));
            }
            _ => {}
        }
        let frame = Input::Frame {
            frontend: id,
            seq,
            message,
        };
        seq += 1;
        if hub.send(frame).await.is_err() {
            break;
        }
    }
    tracing::debug!(frontend = name, "frontend closed its connection");
    ReadEnd::Closed
}

/// Writes the outbox to the frontend, gathering whatever is queued into one write, and records
/// the last batch written (the hub acknowledges frames only once their effects are written) and
/// the bytes still waiting; a heartbeat after a second of nothing to write.
async fn write_outbox(
    mut stream: WriteHalf,
    mut outbox: mpsc::UnboundedReceiver<(u64, Bytes)>,
    progress: &Progress,
    written: &Notify,
) -> std::io::Result<()> {
    let mut gathered = BytesMut::new();
    let mut heartbeat = BytesMut::new();
    Downstream::Heartbeat.encode(&mut heartbeat);
    let mut beat = Beat::new();
    loop {
        let (mut batch, first) = tokio::select! {
            next = outbox.recv() => match next {
                Some(next) => next,
                None => break,
            },
            idle = beat.tick() => {
                if idle > 0 {
                    stream.write_all(&heartbeat).await?;
                }
                continue;
            }
        };
        beat.active();
        let mut bytes = first.len();
        if outbox.is_empty() {
            stream.write_all(&first).await?;
        } else {
            gathered.extend_from_slice(&first);
            while gathered.len() < WRITE_BATCH {
                match outbox.try_recv() {
                    Ok((more_batch, more)) => {
                        batch = more_batch;
                        bytes += more.len();
                        gathered.extend_from_slice(&more);
                    }
                    Err(_) => break,
                }
            }
            stream.write_all(&gathered).await?;
            gathered.clear();
            if gathered.capacity() > WRITE_BATCH * 2 {
                gathered = BytesMut::new();
            }
        }
        progress.queued.fetch_sub(bytes, Ordering::AcqRel);
        progress.written.store(batch, Ordering::Release);
        written.notify_one();
    }
    // The hub let go of this frontend: hold the connection open no longer.
    Err(std::io::Error::other("dropped by the kernel"))
}
