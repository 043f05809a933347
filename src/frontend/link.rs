//! The frontend's link to the kernel: connect (and reconnect, with backoff), say hello with every
//! live session, then pump lines up and events down.
//!
//! Clients never notice the kernel going away: their lines wait in the upstream queue while the
//! link reconnects, and the new kernel rebuilds its state from the hello.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::session::{Payload, Sessions};
use crate::chat::Event;
use crate::wire::{self, Downstream, Upstream};

/// First reconnect delay; doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How long the kernel may take to answer a hello.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes gathered into one write to the kernel at most.
const WRITE_BATCH: usize = 64 << 10;

/// Everything the link needs; `render` turns an event into this frontend's wire format.
pub struct Link<T, R> {
    pub name: String,
    pub socket: PathBuf,
    pub sessions: Arc<Sessions<T>>,
    pub render: R,
}

impl<T, R> Link<T, R>
where
    T: Payload,
    R: Fn(&Event) -> T,
{
    /// Runs until `shutdown`. `ready` is called once, on the first welcome.
    pub async fn run(self, mut upstream: mpsc::Receiver<Upstream>, shutdown: CancellationToken, ready: impl FnOnce()) {
        let mut ready = Some(ready);
        let mut backoff = BACKOFF_MIN;
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                connected = self.connect() => connected,
            };
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
            tracing::info!(socket = %self.socket.display(), sessions = self.sessions.len(), "connected to the kernel");
            if let Some(ready) = ready.take() {
                ready();
            }
            let error = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = self.receive(frames) => e,
                e = send(write, &mut upstream) => e,
            };
            tracing::warn!(error = %format!("{error:#}"), "lost the kernel; reconnecting");
        }
    }

    /// Connects, says hello with every live session, and waits for the welcome.
    async fn connect(&self) -> Result<(FramedRead<OwnedReadHalf, LengthDelimitedCodec>, OwnedWriteHalf)> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        let (read, mut write) = stream.into_split();
        let hello = Upstream::Hello {
            version: wire::VERSION,
            frontend: self.name.clone(),
            sessions: self.sessions.snapshot(),
        };
        let mut buf = BytesMut::new();
        hello.encode(&mut buf);
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
    async fn receive(&self, mut frames: FramedRead<OwnedReadHalf, LengthDelimitedCodec>) -> anyhow::Error {
        while let Some(body) = frames.next().await {
            let message = match body
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(Downstream::decode(&b)?))
            {
                Ok(message) => message,
                Err(e) => return e.context("malformed frame from the kernel"),
            };
            match message {
                Downstream::Deliver { to, event } => self.sessions.deliver(&to, &(self.render)(&event)),
                Downstream::Named { session, login } => self.sessions.set_login(session, login),
                Downstream::Close { session } => self.sessions.close(session),
                Downstream::Welcome { .. } => return anyhow!("a second welcome from the kernel"),
                Downstream::Census { .. } => {} // never asked for
            }
        }
        anyhow!("the kernel closed the connection")
    }
}

/// Writes queued upstream messages, gathering whatever is waiting into one write.
async fn send(mut write: OwnedWriteHalf, upstream: &mut mpsc::Receiver<Upstream>) -> anyhow::Error {
    let mut buf = BytesMut::new();
    loop {
        let Some(first) = upstream.recv().await else {
            return anyhow!("every client sender is gone");
        };
        first.encode(&mut buf);
        while buf.len() < WRITE_BATCH {
            match upstream.try_recv() {
                Ok(more) => more.encode(&mut buf),
                Err(_) => break,
            }
        }
        if let Err(e) = write.write_all(&buf).await {
            return anyhow::Error::from(e).context("writing to the kernel");
        }
        buf.clear();
    }
}
