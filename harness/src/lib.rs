//! chat-harness: runs the real `chat-supervisor up` for the integration tests (`tests/util`) and
//! for the benchmark (`chat-bench`), so both start, watch and stop the system the same way.
//!
//! # Layout
//! - [`Up`] (`up.rs`): `up` in a temporary directory: its stdout lines, the `listening` lines,
//!   its children's pids and memory, client commands, config edits, a clean stop.
//! - [`Stdout`] (`stdout.rs`): a child's stdout collected line by line, and waits for a line.
//! - [`Proc`] (`proc.rs`): a child process killed on drop, and facts about any process (RSS, gone).
//! - [`Redis`] (`redis.rs`): a `redis-server` of one's own on a Unix socket, for the cluster.
//!
//! Every wait is bounded ([`Options::wait`]). What waits or runs a command returns an error that
//! says what it waited for and what it saw; a test unwraps it, the benchmark reports it.
//!
//! ```ignore
//! let mut up = Up::start(env!("CARGO_BIN_EXE_chat-supervisor"), &config, &Options::default())?;
//! let (addr, pid) = up.listening("twisted")?;
//! let pids = up.children()?;
//! up.stop()?;
//! ```

mod proc;
mod redis;
mod stdout;
mod up;

pub use proc::{Proc, exited, pss_kib, rss_kib, terminate};
pub use redis::Redis;
pub use stdout::{Stdout, field};
pub use up::{Options, Up};
