//! The kernel process (`chat-supervisor kernel --socket PATH`): the only owner of the chat state.
//!
//! One task owns the [`Chat`](crate::chat::Chat) ([`hub`]); each frontend connection has a reader
//! feeding it and a writer draining what the hub queues for it ([`connection`]); the hub's
//! acknowledgements wait in a [`ledger`]. The socket ([`socket`], served by `listen`) takes only
//! peers of our own user, and is bound again if its file is deleted.

pub mod clock;
mod connection;
mod hub;
mod ledger;
mod listen;
pub(crate) mod socket;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::chat::FrontendId;

/// Longest a stop waits for the last acknowledgements to be written.
const STOP_FLUSH: Duration = Duration::from_millis(200);

/// A kernel's part in a cluster: the cluster, and the run of `up` it belongs to.
#[derive(Debug, Clone)]
pub struct Membership {
    pub cluster: crate::config::Cluster,
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
    let mut listening = listen::Listening::bind(path)?;
    tracing::info!(socket = %path.display(), "kernel ready");
    crate::notify::ready();

    // Every frontend's reader holds a sender; the hub ends when the last one is gone.
    let (hub_tx, hub_rx) = mpsc::channel(hub::QUEUE);
    let written = Arc::new(Notify::new());
    let clustered = match member {
        Some(m) => Some(cluster_member(&m, hub_tx.clone())?),
        None => None,
    };
    let hub = tokio::spawn(hub::run(hub_rx, expect, written.clone(), clustered));
    tokio::spawn(crate::memory::trim_when_idle());
    tokio::spawn(crate::notify::watchdog());
    let mut next: FrontendId = 1;
    // Cancelled after the hub's last acknowledgements are written (see below), not at once.
    let connections = CancellationToken::new();
    while let Some(stream) = listening.accept(&shutdown).await {
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

/// This kernel as its host's member of a cluster, with its link to Redis, which brings what Redis
/// answers to the hub's inputs.
fn cluster_member(m: &Membership, hub: mpsc::Sender<hub::Input>) -> Result<hub::Clustered> {
    tracing::info!(redis = %m.cluster.redis, node = %m.cluster.node, "a member of a cluster");
    let presence = crate::cluster::link::Presence {
        node: m.cluster.node.clone(),
        instance: m.instance.clone(),
        ttl: crate::cluster::member::PRESENCE_TTL,
    };
    let link = crate::cluster::link::Link::start(
        &m.cluster.redis,
        crate::cluster::PREFIX,
        presence,
        hub,
        hub::Input::Cluster,
    )?;
    let member = crate::cluster::member::Member::new(&m.cluster.node, &m.instance);
    Ok(hub::Clustered::new(member, link))
}
