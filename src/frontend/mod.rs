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
mod admission;
pub(crate) mod args;
mod carry;
pub(crate) mod client;
mod hand_over;
pub(crate) mod handoff;
pub mod http;
mod link;
pub mod listen;
mod outbox;
pub mod render;
mod serve;
pub mod session;
pub mod tcp;
pub mod telnet;
pub mod web;
pub mod websocket;

use std::path::PathBuf;

pub use serve::run;

/// Per-server limits, owned by the config (see [`crate::config::Settings`]).
pub use crate::config::Limits;

/// Everything [`run`] needs: the server's settings, every limit at least 1 (see
/// [`args::ServeArgs::options`]), and the kernel's socket.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: crate::config::Settings,
    pub kernel: PathBuf,
}
