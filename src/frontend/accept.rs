//! The accept loop of every frontend: admission (`max_connections` and `max_connections_per_ip`,
//! counting every TCP connection), refusals that answer and close within a second, TCP keepalive
//! on every client socket (a peer that vanished without a word is found), and a reserve of file
//! descriptors so that serving never runs into the open-file limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::admission::{Admission, Refusal, Ticket};
use crate::throttle::Warnings;

/// File descriptors kept out of `max_connections`: the kernel link, logs, refusals in flight.
pub const FD_RESERVE: usize = 128;
/// Refusals being answered at once; past it, refused connections are closed without a word.
const REFUSING: usize = 64;
/// TCP keepalive: first probe after this much silence, then every [`KEEPALIVE_INTERVAL`], and the
/// peer is gone after [`KEEPALIVE_PROBES`] unanswered ones (about two minutes in all).
const KEEPALIVE_IDLE: u32 = 60;
const KEEPALIVE_INTERVAL: u32 = 10;
const KEEPALIVE_PROBES: u32 = 6;

/// What a refused client is told, in its protocol.
pub struct Refusals {
    pub full: Bytes,
    pub per_ip: Bytes,
}

/// The connections this process can hold: `wanted`, or fewer if the open-file limit is lower.
pub fn connection_budget(wanted: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let limit = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft) as usize;
    let budget = limit.saturating_sub(FD_RESERVE).max(1);
    if wanted > budget {
        tracing::warn!(
            max_connections = wanted,
            open_file_limit = limit,
            "max_connections is above what the open-file limit allows; serving at most {budget}"
        );
    }
    wanted.min(budget)
}

/// Accepts until `shutdown`, handing each admitted connection to `handler` on a task of its own.
pub async fn serve<H, F>(
    listener: TcpListener,
    admission: Arc<Admission>,
    refusals: Refusals,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(TcpStream, SocketAddr, Ticket) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let failed = Warnings::new(1, 5);
    let full = Warnings::new(1, 5);
    let per_ip = Warnings::new(1, 5);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: back off rather than spin.
                    crate::warn_limited!(failed, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        match admission.admit(peer.ip()) {
            Ok(ticket) => {
                tune(&stream);
                tokio::spawn(handler(stream, peer, ticket));
            }
            Err(refusal) => {
                let message = match refusal {
                    Refusal::Full => {
                        crate::warn_limited!(full, %peer, "server full; refusing a client");
                        refusals.full.clone()
                    }
                    Refusal::PerIp => {
                        crate::warn_limited!(per_ip, %peer, "too many connections from one address; refusing a client");
                        refusals.per_ip.clone()
                    }
                };
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        super::client::refuse(stream, message).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// No Nagle delay (chat lines are small and wanted now), and keepalive probes.
fn tune(stream: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = stream.set_nodelay(true);
    let _ = setsockopt(stream, sockopt::KeepAlive, &true);
    let _ = setsockopt(stream, sockopt::TcpKeepIdle, &KEEPALIVE_IDLE);
    let _ = setsockopt(stream, sockopt::TcpKeepInterval, &KEEPALIVE_INTERVAL);
    let _ = setsockopt(stream, sockopt::TcpKeepCount, &KEEPALIVE_PROBES);
}
