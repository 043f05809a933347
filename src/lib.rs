//! chat-supervisor: one chat shared by telnet and web frontends, each its own process, around one
//! kernel process that owns the chat state.
//!
//! # Layout
//! By layer: a module uses only those listed before it (a newcomer finds the kernel, a frontend
//! or the supervisor from the tree alone; docs/ARCHITECTURE.md walks a chat line through them).
//!
//! The chat and its protocol, pure code:
//! - [`chat`]: input parsing, user names, the state, the events and their texts.
//! - [`wire`]: the kernel ⇄ frontend frames and their encoding.
//! - `throttle`, `heartbeat`, `instance`, `spelling`, `versioned`: token buckets, the kernel
//!   link's heartbeat rule, a number for one run of a process, the one spelling of each word that
//!   config, command line and `status` share, and the format of what one process leaves another.
//!
//! The system underneath:
//! - `sys`: every `unsafe` of the crate, behind small safe functions (the rest denies it).
//! - `quiet` (a Unix stream that wakes its process only for input), `memory` (freed memory back
//!   to the system after a burst), `notify` (readiness and watchdog pings), `logging`.
//!
//! What the operator writes:
//! - [`config`]: `servers.toml`, validated strictly; a server's settings, one type for the file,
//!   the `serve` command line and the frontend.
//!
//! What outlives a process:
//! - `journal`: where a frontend's clients left off (the position file, the carry), and what a
//!   new process makes of it, as pure decisions.
//! - `handoff`: the socket between the supervisor and a frontend over which client connections
//!   are parked, adopted, and handed over.
//!
//! The processes:
//! - `cluster`: with `[cluster]`, a kernel as its host's member of one chat kept in Redis.
//! - [`kernel`]: `chat-supervisor kernel`: the hub that owns the chat through its engine (the
//!   local chat, or this host's cluster member), one task pair per frontend connection, the
//!   private Unix socket.
//! - [`frontend`]: `chat-supervisor serve`: the kernel link, the telnet and WebSocket servers,
//!   each client's reader, writer and outbox, rendering, the web page.
//! - [`supervisor`]: `chat-supervisor up`: sockets, children and their pure lifecycle, restarts,
//!   logs, control, reloads.
//!
//! And the command line: [`cli`]; `main.rs` only parses it and prints errors.
//!
//! Public are the modules the workspace's other packages and the integration tests use; the rest
//! is private to the crate, so that the compiler reports what nothing uses.
//!
//! Beside `src/`, two packages of the workspace that this library does not contain: `harness/`
//! (`chat-harness`), which runs `chat-supervisor up` for the integration tests and the benchmark,
//! and `bench/` (`chat-bench`), the load generator behind `scripts/bench.sh`, with its in-process
//! baseline.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod chat;
pub mod cli;
pub(crate) mod cluster;
pub mod config;
pub mod frontend;
pub(crate) mod handoff;
pub(crate) mod heartbeat;
pub(crate) mod instance;
pub(crate) mod journal;
pub mod kernel;
pub(crate) mod logging;
pub(crate) mod memory;
pub(crate) mod notify;
pub(crate) mod quiet;
pub(crate) mod spelling;
pub mod supervisor;
pub(crate) mod sys;
pub(crate) mod throttle;
pub(crate) mod versioned;
pub mod wire;
