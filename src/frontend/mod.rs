//! The frontend process (`chat-supervisor serve`): owns client connections and talks to the
//! kernel for everything else.
//!
//! - [`args`]: the `serve` command line, built by the supervisor and parsed here.
//! - [`listen`]: the listening socket, inherited (fd 3) or bound by hand.
//! - [`accept`] and [`admission`]: the accept loop, connection limits (pure counting), refusals.
//! - [`client`]: one client connection: throttled reading, the writer, timeouts.
//! - [`session`]: this frontend's sessions and the flow of lines to the kernel.
//! - [`outbox`]: each client's bounded outgoing queue.
//! - [`link`]: the kernel connection: hello, heartbeats, reconnects, frames both ways.
//! - [`telnet`] and [`tcp`]: telnet framing (pure) and the telnet server.
//! - [`http`], [`websocket`] and [`web`]: HTTP requests and WebSocket framing (pure), and the web
//!   server.
//! - [`render`]: events into telnet lines or WebSocket JSON (pure).

pub mod accept;
pub mod admission;
pub mod args;
pub mod client;
pub mod http;
pub mod link;
pub mod listen;
pub mod outbox;
pub mod render;
pub mod session;
pub mod tcp;
pub mod telnet;
pub mod web;
pub mod websocket;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use link::Link;
use session::Sessions;

/// Which protocol a frontend serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Telnet: a TCP line chat.
    Tcp,
    /// The web page and its WebSocket.
    Ws,
}

crate::spelled!(Kind, "kind", { Kind::Tcp => "tcp", Kind::Ws => "ws" });

/// Per-server limits of PROTOCOL.md §5.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest input line in bytes.
    pub max_line: usize,
    /// Connections served at once; more are told `server full`.
    pub max_connections: usize,
    /// Connections from one address at once; more are told `too many connections`.
    pub max_connections_per_ip: usize,
    /// Lines a second a client may send after its burst; 0: unlimited.
    pub input_rate: u32,
    pub input_burst: u32,
    /// How long a client's socket may take no byte while output waits.
    pub send_timeout: Duration,
    /// How long an HTTP request head may take to arrive (web only).
    pub handshake_timeout: Duration,
    /// A WebSocket client silent this long is pinged; silent twice this long, it is dropped.
    /// Not a servers.toml key: tests shorten it.
    pub ping_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        use crate::config as c;
        Self {
            max_line: c::DEFAULT_MAX_LINE,
            max_connections: c::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: c::DEFAULT_MAX_CONNECTIONS_PER_IP,
            input_rate: c::DEFAULT_INPUT_RATE,
            input_burst: c::DEFAULT_INPUT_BURST,
            send_timeout: c::DEFAULT_SEND_TIMEOUT,
            handshake_timeout: c::DEFAULT_HANDSHAKE_TIMEOUT,
            ping_interval: client::PING_INTERVAL,
        }
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub kind: Kind,
    pub kernel: PathBuf,
    pub color: bool,
    pub limits: Limits,
    /// Host names served besides the bound address (web only).
    pub allowed_hosts: Vec<String>,
    /// Greets each client as it connects (`[INFO] - MOTD`); empty: no greeting.
    pub motd: String,
}

/// Serves clients on `listener` (see [`listen::listener`]) until `shutdown`.
pub async fn run(options: Options, listener: std::net::TcpListener, shutdown: CancellationToken) -> Result<()> {
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(name = %options.name, kind = %options.kind, %addr, "listening");
    let limits = Limits {
        max_connections: accept::connection_budget(options.limits.max_connections),
        ..options.limits
    };

    tokio::spawn(crate::memory::trim_when_idle());
    tokio::spawn(crate::notify::watchdog());
    // The link task owns the receiver and lives as long as the process.
    let (upstream, upstream_rx) = mpsc::channel(session::UPSTREAM);
    let greeting = (!options.motd.is_empty()).then_some(crate::chat::Event::Greeting { motd: options.motd });
    match options.kind {
        Kind::Tcp => {
            let color = options.color;
            let greeting = greeting.map(|event| render::telnet(&event, color));
            let sessions = Arc::new(Sessions::new(upstream, None).greeting(greeting));
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
                limits,
            };
            tcp::serve(listener, Arc::new(telnet), shutdown).await;
        }
        Kind::Ws => {
            let greeting = greeting.map(|event| web::render(&event));
            let sessions = Arc::new(Sessions::new(upstream, Some(web::goodbye())).greeting(greeting));
            let sweeping = sessions.clone();
            tokio::spawn(async move { sweeping.sweep(websocket::ping(b""), limits.ping_interval).await });
            let link = Link {
                name: options.name,
                socket: options.kernel,
                sessions: sessions.clone(),
                render: web::render,
            };
            tokio::spawn(link.run(upstream_rx, shutdown.clone(), crate::notify::ready));
            let hosts = http::Hosts {
                bound: addr.ip(),
                allowed: options.allowed_hosts,
            };
            let web = web::Web {
                sessions,
                limits,
                hosts,
            };
            web::serve(listener, Arc::new(web), shutdown).await;
        }
    }
    Ok(())
}
