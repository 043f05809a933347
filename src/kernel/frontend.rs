//! One frontend's connection to the kernel: a reader that decodes its frames for the hub, and a
//! writer that drains the outbox the hub fills. When either ends, so does the other, and the hub
//! is told once that the frontend is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::hub::{self, Input};
use crate::chat::FrontendId;
use crate::wire::{self, Downstream, Upstream};

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes gathered into one write at most.
const WRITE_BATCH: usize = 64 << 10;

pub async fn serve(
    id: FrontendId,
    stream: UnixStream,
    hub: mpsc::Sender<Input>,
    written: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::new(read, wire::codec());
    let (name, instance, first, sessions) = match tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await {
        Ok(Some(Ok(body))) => match Upstream::decode(&body) {
            Ok(Upstream::Hello {
                version: wire::VERSION,
                frontend,
                instance,
                first,
                sessions,
            }) => (frontend, instance, first, sessions),
            Ok(Upstream::Census) => {
                census(write, &hub).await;
                return;
            }
            Ok(Upstream::Hello { version, frontend, .. }) => {
                tracing::warn!(%frontend, version, expected = wire::VERSION, "refused a frontend speaking another protocol version");
                return;
            }
            Ok(other) => {
                tracing::warn!(frontend = id, frame = ?other, "refused a connection that did not start with hello");
                return;
            }
            Err(e) => {
                tracing::warn!(frontend = id, error = %e, "refused a connection whose first frame is malformed");
                return;
            }
        },
        Ok(Some(Err(e))) => {
            tracing::warn!(frontend = id, error = %e, "refused a connection with a bad first frame");
            return;
        }
        Ok(None) => return,
        Err(_) => {
            tracing::warn!(frontend = id, "refused a connection that sent no hello in time");
            return;
        }
    };
    tracing::info!(frontend = %name, id, sessions = sessions.len(), "frontend attached");

    // The hub holds the only sender once we pass it on; dropping it (frontend gone, or too slow)
    // ends the writer after it has written what was queued.
    let (outbox, outbox_rx) = mpsc::channel(hub::OUTBOX);
    let mut welcome = BytesMut::new();
    Downstream::Welcome { version: wire::VERSION }.encode(&mut welcome);
    outbox.try_send((0, welcome.freeze())).expect("a new outbox has room");
    let progress = Arc::new(AtomicU64::new(0));
    let attach = Input::Attach {
        frontend: id,
        name: name.clone(),
        instance,
        sessions,
        outbox,
        written: progress.clone(),
    };
    if hub.send(attach).await.is_err() {
        return;
    }

    tokio::select! {
        result = read_frames(id, &name, first, frames, &hub) => if let Err(e) = result {
            tracing::warn!(frontend = %name, error = %e, "disconnecting frontend");
        },
        result = write_outbox(write, outbox_rx, &progress, &written) => if let Err(e) = result {
            tracing::warn!(frontend = %name, error = %e, "lost frontend");
        },
        _ = shutdown.cancelled() => {}
    }
    tracing::info!(frontend = %name, id, "frontend detached");
    let _ = hub.send(Input::Detach { frontend: id }).await;
}

/// Answers an observer (the supervisor's `status`) whose first frame is a census request: one
/// Census frame, then the connection closes. It is no frontend and changes nothing.
async fn census(mut stream: OwnedWriteHalf, hub: &mpsc::Sender<Input>) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if hub.send(Input::Census { reply }).await.is_err() {
        return;
    }
    let Ok(users) = answer.await else { return };
    let mut frame = BytesMut::new();
    Downstream::Census { users }.encode(&mut frame);
    let _ = stream.write_all(&frame).await;
}

/// Forwards decoded frames to the hub until the frontend hangs up or sends a malformed frame.
async fn read_frames(
    id: FrontendId,
    name: &str,
    first: u64,
    mut frames: FramedRead<OwnedReadHalf, tokio_util::codec::LengthDelimitedCodec>,
    hub: &mpsc::Sender<Input>,
) -> anyhow::Result<()> {
    let mut seq = first;
    while let Some(body) = frames.next().await {
        let body = body.map_err(|e| anyhow::anyhow!("malformed frame: {e}"))?;
        let message = Upstream::decode(&body).map_err(|e| anyhow::anyhow!("malformed frame: {e}"))?;
        if let Upstream::Hello { .. } | Upstream::Census = message {
            anyhow::bail!("malformed frame: {message:?} after the hello");
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
    Ok(())
}

/// Writes the outbox to the frontend, gathering whatever is queued into one write, and records
/// the last batch written (the hub acknowledges frames only once their effects are written).
async fn write_outbox(
    mut stream: OwnedWriteHalf,
    mut outbox: mpsc::Receiver<(u64, Bytes)>,
    progress: &AtomicU64,
    written: &Notify,
) -> std::io::Result<()> {
    let mut gathered = BytesMut::new();
    while let Some((mut batch, first)) = outbox.recv().await {
        if outbox.is_empty() {
            stream.write_all(&first).await?;
        } else {
            gathered.extend_from_slice(&first);
            while gathered.len() < WRITE_BATCH {
                match outbox.try_recv() {
                    Ok((more_batch, more)) => {
                        batch = more_batch;
                        gathered.extend_from_slice(&more);
                    }
                    Err(_) => break,
                }
            }
            stream.write_all(&gathered).await?;
            gathered.clear();
        }
        progress.store(batch, Ordering::Release);
        written.notify_one();
    }
    // The hub let go of this frontend: hold the connection open no longer.
    Err(std::io::Error::other("dropped by the kernel"))
}
