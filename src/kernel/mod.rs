//! The kernel process (`chat-supervisor kernel --socket PATH`): the only owner of the chat state.
//!
//! One task owns the [`Chat`](crate::chat::Chat) ([`hub`]); each frontend connection has a reader
//! feeding it and a writer draining a bounded outbox ([`frontend`]). The accept loop here checks
//! each peer's uid before anything else.

pub mod clock;
mod frontend;
mod hub;
pub mod socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::chat::FrontendId;

/// Serves frontends on the socket at `path` until `shutdown` fires, then removes the socket.
///
/// `expect` names the frontends whose hellos a restarted kernel waits for before it applies any
/// frame (the supervisor passes every configured server).
pub async fn run(path: &Path, expect: Vec<String>, shutdown: CancellationToken) -> Result<()> {
    let listener = socket::bind(path)?;
    let _socket = RemoveOnDrop(path.to_path_buf());
    tracing::info!(socket = %path.display(), "kernel ready");
    crate::notify::ready();

    // Every frontend's reader holds a sender; the hub ends when the last one is gone.
    let (hub_tx, hub_rx) = mpsc::channel(hub::QUEUE);
    let written = Arc::new(Notify::new());
    let hub = tokio::spawn(hub::run(hub_rx, expect, written.clone()));
    tokio::spawn(crate::memory::trim_when_idle());
    let mut next: FrontendId = 1;
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most likely: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match socket::same_user(&stream) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(cred = ?stream.peer_cred().ok(), "refused a peer running as another user");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a peer whose credentials are unreadable");
                continue;
            }
        }
        let id = next;
        next += 1;
        tokio::spawn(frontend::serve(
            id,
            stream,
            hub_tx.clone(),
            written.clone(),
            shutdown.clone(),
        ));
    }
    drop(hub_tx);
    hub.abort();
    tracing::info!("kernel stopped");
    Ok(())
}

/// Removes the socket file when the kernel stops, so the next one finds no stale file.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
