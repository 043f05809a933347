//! `servers.toml`: the schema, its defaults, and strict validation that reports every problem at
//! once, each with file, line and key. What a frontend serves with, [`Settings`], is the part of
//! a `[[server]]` that the `serve` command line spells too.
//!
//! The file is walked as a spanned TOML table rather than deserialized, so that an unknown key, a
//! wrong type and a duplicate name are all reported in one run instead of one per run.

mod check;
mod cluster;
mod settings;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use check::check;
pub use cluster::Cluster;
pub use settings::{Limits, Settings};

/// A validated configuration. Paths are absolute (relative ones are taken from the file's folder).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub log_dir: PathBuf,
    pub run_dir: PathBuf,
    /// Dated log files kept after rotation, per log, besides the live one (at least 1: a restart
    /// counts the day's file among them, see `supervisor::logfile`).
    pub log_keep: usize,
    /// A child that sends no `WATCHDOG=1` for this long is killed and restarted; `None`: never.
    pub watchdog: Option<Duration>,
    /// `[cluster]`: this host serves one chat with every host on the same Redis; `None`: this
    /// host's chat is its own, and no Redis is needed.
    pub cluster: Option<Cluster>,
    pub servers: Vec<Server>,
}

/// Which protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Telnet: a TCP line chat.
    Tcp,
    /// The web page and its WebSocket.
    Ws,
}

crate::spelled!(Kind, "kind", { Kind::Tcp => "tcp", Kind::Ws => "ws" });

/// One `[[server]]`: a frontend process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// What its frontend serves with (its name and kind among them).
    pub settings: Settings,
    pub host: IpAddr,
    /// 0 lets the OS choose.
    pub port: u16,
    pub restart: Restart,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// When a server's process is restarted after it exits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Whatever the exit status (the default).
    Always,
    /// Only after a non-zero exit or a signal.
    OnFailure,
    Never,
}

crate::spelled!(Restart, "restart policy", {
    Restart::Always => "always",
    Restart::OnFailure => "on-failure",
    Restart::Never => "never",
});

pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const DEFAULT_COLOR: bool = true;
pub const DEFAULT_MAX_LINE: usize = 4096;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
pub const DEFAULT_INPUT_RATE: u32 = 20;
pub const DEFAULT_INPUT_BURST: u32 = 40;
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(5);
pub const DEFAULT_LOG_DIR: &str = "logs";
pub const DEFAULT_RUN_DIR: &str = "run";
pub const DEFAULT_LOG_KEEP: usize = 7;
/// Longest `motd`, in characters.
pub const MAX_MOTD: usize = 200;
/// Problems shown of an invalid file; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 50;
/// Names the supervisor's own files use, and `all` (every server, on the command line), so no
/// server may take them.
const RESERVED: [&str; 3] = ["kernel", "supervisor", "all"];

/// The greeting of a server whose config sets no `motd`.
pub fn default_motd(name: &str) -> String {
    format!("Welcome to the {name} chat. Type help for the commands.")
}

/// Why `motd` cannot be a greeting, if it cannot: it must fit on one line of a terminal and show
/// as it reads, so no line break, no control or invisible character, at most [`MAX_MOTD`]
/// characters.
pub fn motd_problem(motd: &str) -> Option<String> {
    let length = motd.chars().count();
    if motd.contains(['\n', '\r']) {
        Some("must be one line".into())
    } else if crate::chat::command::strip_controls(motd) != motd {
        Some("must have no control or invisible characters".into())
    } else if length > MAX_MOTD {
        Some(format!("must be at most {MAX_MOTD} characters, not {length}"))
    } else {
        None
    }
}

/// [`motd_problem`] as a command-line value parser.
pub fn motd_arg(motd: &str) -> Result<String, String> {
    motd_problem(motd).map_or_else(|| Ok(motd.to_string()), Err)
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    /// Where in the file, e.g. `server[2].port`.
    pub key: String,
    pub message: String,
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(SHOWN_PROBLEMS) {
            write!(f, "\n  {}:{}: {}: {}", self.file.display(), p.line, p.key, p.message)?;
        }
        if n > SHOWN_PROBLEMS {
            write!(f, "\n  … and {} more", n - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Reads and validates `path`.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let (text, base) = read(path)?;
    Ok(parse(path, &base, &text)?)
}

/// What can be had of a file that may be invalid, for `logs` and for logging why `up` failed: its
/// `[supervisor]` settings and its valid servers. An error (the same as [`load`]'s) if it cannot
/// be read, is not TOML, or `[supervisor]` itself is at fault.
pub fn load_partial(path: &Path) -> anyhow::Result<Config> {
    let (text, base) = read(path)?;
    let (config, problems) = check(path, &base, &text);
    let settings_sound = problems
        .iter()
        .all(|p| p.key != "(syntax)" && p.key != "supervisor" && !p.key.starts_with("supervisor."));
    if settings_sound {
        Ok(config)
    } else {
        Err(parse(path, &base, &text).expect_err("has problems").into())
    }
}

/// The file's text and the folder its relative paths start from.
fn read(path: &Path) -> anyhow::Result<(String, PathBuf)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((text, std::path::absolute(base)?))
}

/// Validates `text` as the contents of `file`; relative paths are taken from `base`.
pub fn parse(file: &Path, base: &Path, text: &str) -> Result<Config, Invalid> {
    let (config, problems) = check(file, base, text);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Invalid {
            file: file.to_path_buf(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests;
