//! chat-supervisor: one chat shared by telnet and web frontends, each its own process, around one
//! kernel process that owns the chat state.
//!
//! # Layout
//! - [`chat`]: the chat as pure code: input parsing, user names, the state, the events and their
//!   texts.
//! - [`wire`]: the kernel ⇄ frontend frames and their encoding.
//! - [`kernel`]: the kernel process, `chat-supervisor kernel`: the hub that owns the state, one
//!   task pair per frontend connection, the private Unix socket.
//! - [`frontend`]: the frontend process, `chat-supervisor serve`: the kernel link, the telnet and
//!   WebSocket servers, rendering, the web page.
//! - [`handoff`]: client connections parked in the supervisor, adopted by a frontend's next
//!   process.
//! - [`journal`]: where a frontend's clients left off, kept across the death of its process, and
//!   what a new process makes of it.
//! - [`cluster`]: with `[cluster]`, each host's kernel as its member of one chat kept in Redis.
//! - [`supervisor`]: `chat-supervisor up`: sockets, children, restarts, logs, control, reloads.
//! - [`config`]: `servers.toml`, validated strictly.
//! - [`spelling`]: the one spelling of each word that config, command line and `status` share.
//! - [`notify`]: readiness reporting to whoever started the process.
//! - [`heartbeat`]: the kernel link's heartbeat rule, without a timer per frame.
//! - [`instance`]: a number for one run of a process (a frontend's instance, a kernel's epoch).
//! - [`quiet`]: the kernel link's Unix stream, which wakes its process only for input.
//! - [`memory`]: handing freed memory back to the system after a burst.
//! - [`throttle`]: token buckets for client input and for warnings (pure).
//! - [`logging`]: where each process's log lines go, and what `RUST_LOG` lets through.
//! - [`cli`]: the command line; `main.rs` only parses it and prints errors.
//! - [`sys`]: every `unsafe` of the crate, behind small safe functions (the rest denies it).
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
pub mod wire;
