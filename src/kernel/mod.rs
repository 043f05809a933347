//! The kernel process (`chat-supervisor kernel --socket PATH`): the only owner of the chat state.
//!
//! One task owns the [`Chat`](crate::chat::Chat) ([`hub`]); each frontend connection has a reader
//! feeding it and a writer draining what the hub queues for it ([`connection`]); the hub's
//! acknowledgements wait in a [`ledger`]. The accept loop here checks
//! each peer's uid before anything else, and binds the socket again if its file is deleted (else
//! restarted frontends, which find the kernel by path, could never reach it again).

pub mod clock;
mod connection;
mod hub;
pub mod ledger;
pub mod socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::chat::FrontendId;

/// How often the kernel checks that its socket file is still there.
const SOCKET_CHECK: Duration = Duration::from_secs(1);
/// Longest a stop waits for the last acknowledgements to be written.
const STOP_FLUSH: Duration = Duration::from_millis(200);

/// A kernel's part in a cluster: the cluster, and the run of `up` it belongs to.
#[derive(Debug, Clone)]
pub struct Membership {
    pub cluster: crate::cluster::Cluster,
    pub instance: String,
}

/// Serves frontends on the socket at `path` until `shutdown` fires, then removes the socket.
///
/// `expect` names the frontends whose hellos a restarted kernel waits for before it applies any
/// frame (the supervisor passes every configured server). With `member`, the kernel is its
/// host's member of a cluster (see [`crate::cluster`]).
pub async fn run(
    path: &Path,
    expect: Vec<String>,
    member: Option<Membership>,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut listener = socket::bind(path)?;
    let mut file = SocketFile {
        path: path.to_path_buf(),
        identity: socket::Identity::of(path)?,
    };
    tracing::info!(socket = %path.display(), "kernel ready");
    crate::notify::ready();

    // Every frontend's reader holds a sender; the hub ends when the last one is gone.
    let (hub_tx, hub_rx) = mpsc::channel(hub::QUEUE);
    let written = Arc::new(Notify::new());
    let clustered = match member {
        Some(m) => {
            tracing::info!(redis = %m.cluster.redis, node = %m.cluster.node, "a member of a cluster");
            let ttl = crate::cluster::member::PRESENCE_TTL.as_millis().to_string();
            let presence = [m.cluster.node.clone(), m.instance.clone(), ttl];
            let link = crate::cluster::link::Link::start(
                &m.cluster.redis,
                crate::cluster::PREFIX,
                presence,
                hub_tx.clone(),
                hub::Input::Cluster,
            )?;
            let member = crate::cluster::member::Member::new(&m.cluster.node, &m.instance);
            Some(hub::Clustered { member, link })
        }
        None => None,
    };
    let hub = tokio::spawn(hub::run(hub_rx, expect, written.clone(), clustered));
    tokio::spawn(crate::memory::trim_when_idle());
    tokio::spawn(crate::notify::watchdog());
    let mut check = tokio::time::interval(SOCKET_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last failure to bind again, logged once rather than every second.
    let mut rebind_error = None;
    let mut next: FrontendId = 1;
    // Cancelled after the hub's last acknowledgements are written (see below), not at once.
    let connections = CancellationToken::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = check.tick() => {
                if file.identity.still_at(path) {
                    continue;
                }
                // Connected frontends keep their streams; only the listener is replaced.
                match socket::bind(path).and_then(|l| Ok((l, socket::Identity::of(path)?))) {
                    Ok((new, identity)) => {
                        tracing::warn!(socket = %path.display(), "the socket file was deleted or replaced; bound it again");
                        listener = new;
                        file.identity = identity;
                        rebind_error = None;
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        if rebind_error.as_ref() != Some(&e) {
                            tracing::warn!(socket = %path.display(), error = %e, "the socket file is gone and cannot be bound again");
                            rebind_error = Some(e);
                        }
                    }
                }
                continue;
            }
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
        tokio::spawn(connection::serve(
            id,
            stream,
            hub_tx.clone(),
            written.clone(),
            connections.clone(),
        ));
    }
    // Acknowledgements wait a little for other frames to ride with: a planned stop sends them
    // first, so that the frontends replay nothing the next kernel would only drop.
    let (done, flushed) = tokio::sync::oneshot::channel();
    let flush = async {
        if hub_tx.send(hub::Input::Flush { done }).await.is_ok() {
            let _ = flushed.await;
        }
    };
    if tokio::time::timeout(STOP_FLUSH, flush).await.is_err() {
        tracing::debug!("stopping without every acknowledgement written: the frontends replay those frames");
    }
    connections.cancel();
    drop(hub_tx);
    hub.abort();
    tracing::info!("kernel stopped");
    Ok(())
}

/// The socket file this kernel bound; removed when the kernel stops, so the next one finds no
/// stale file, unless it is another's by then.
struct SocketFile {
    path: PathBuf,
    identity: socket::Identity,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.identity.still_at(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
