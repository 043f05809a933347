//! The frontend process (`chat-supervisor serve`): owns client connections and talks to the
//! kernel for everything else.
//!
//! - [`listen`]: the listening socket, inherited (fd 3) or bound by hand.
//! - [`session`]: this frontend's sessions and the queue to the kernel.
//! - [`outbox`]: each client's bounded outgoing queue.
//! - [`link`]: the kernel connection: hello, reconnects, frames both ways.
//! - [`telnet`] and [`tcp`]: telnet framing (pure) and the telnet server.
//! - [`web`]: the web page and WebSocket server.
//! - [`render`]: events into telnet lines or WebSocket JSON (pure).
//! - [`local`]: the whole chat in one process, the benchmark's baseline.

pub mod link;
pub mod listen;
pub mod local;
pub mod outbox;
pub mod render;
pub mod session;
pub mod tcp;
pub mod telnet;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use link::Link;
use session::Sessions;

/// Which protocol a frontend serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Telnet: a TCP line chat.
    Tcp,
    /// The web page and its WebSocket.
    Ws,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Tcp => "tcp",
            Kind::Ws => "ws",
        })
    }
}

/// Per-server limits of PROTOCOL.md §5.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest input line in bytes.
    pub max_line: usize,
    /// Clients served at once; more are told `server full`.
    pub max_connections: usize,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub kind: Kind,
    pub kernel: PathBuf,
    pub listen: Option<SocketAddr>,
    pub color: bool,
    pub limits: Limits,
}

/// Serves clients until `shutdown`.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<()> {
    let listener = listen::listener(options.listen)?;
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(name = %options.name, kind = %options.kind, %addr, "listening");

    tokio::spawn(crate::memory::trim_when_idle());
    // The link task owns the receiver and lives as long as the process.
    let (upstream, upstream_rx) = mpsc::channel(session::UPSTREAM);
    match options.kind {
        Kind::Tcp => {
            let sessions = Arc::new(Sessions::new(upstream));
            let color = options.color;
            let link = Link {
                name: options.name,
                socket: options.kernel,
                sessions: sessions.clone(),
                render: move |event: &crate::chat::Event| render::telnet(event, color),
            };
            tokio::spawn(link.run(upstream_rx, shutdown.clone(), crate::notify::ready));
            let telnet = tcp::Telnet {
                sessions,
                color,
                limits: options.limits,
            };
            tcp::serve(listener, Arc::new(telnet), shutdown).await;
        }
        Kind::Ws => {
            let sessions = Arc::new(Sessions::new(upstream));
            let link = Link {
                name: options.name,
                socket: options.kernel,
                sessions: sessions.clone(),
                render: web::render,
            };
            tokio::spawn(link.run(upstream_rx, shutdown.clone(), crate::notify::ready));
            let web = Arc::new(web::Web::new(sessions, options.limits));
            axum::serve(listener, web::router(web))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
                .context("serving the web chat")?;
        }
    }
    Ok(())
}
