//! The frontend process (`chat-supervisor serve`): owns client connections and talks to the
//! kernel for everything else.
//!
//! - [`args`]: the `serve` command line, built by the supervisor and parsed here.
//! - [`listen`]: the listening socket, inherited (fd 3) or bound by hand.
//! - [`accept`] and [`admission`]: the accept loop, connection limits (pure counting), refusals.
//! - [`client`]: one client connection: throttled reading, the writer, timeouts.
//! - [`carry`]: what each client's reader holds, as the journal keeps it (pure).
//! - [`session`]: this frontend's sessions and the flow of lines to the kernel.
//! - [`outbox`]: each client's bounded outgoing queue.
//! - [`handoff`]: this process's end of the handoff socket: clients parked with the supervisor,
//!   adopted from a previous process, and the supervisor's request to hand over.
//! - [`serve`](run) and [`hand_over`]: the process from start to end, and its planned hand-over.
//! - [`link`]: the kernel connection: hello, heartbeats, reconnects, frames both ways.
//! - [`telnet`] and [`tcp`]: telnet framing (pure) and the telnet server.
//! - [`http`], [`websocket`] and [`web`]: HTTP requests and WebSocket framing (pure), and the web
//!   server.
//! - [`render`]: events into telnet lines or WebSocket JSON (pure).

pub mod accept;
pub mod admission;
pub mod args;
pub mod carry;
pub mod client;
mod hand_over;
pub mod handoff;
pub mod http;
pub mod link;
pub mod listen;
pub mod outbox;
pub mod render;
mod serve;
pub mod session;
pub mod tcp;
pub mod telnet;
pub mod web;
pub mod websocket;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Kind;
pub use serve::run;

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
