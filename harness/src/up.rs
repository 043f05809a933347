//! `chat-supervisor up` in a temporary directory of its own, watched through its stdout and
//! driven with the binary's client commands, as a user would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::proc::{self, Proc};
use crate::stdout::{Stdout, field};

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `RUST_LOG` of the supervisor (its children inherit it).
    pub rust_log: String,
    /// The supervisor's stderr shows on ours (otherwise it is dropped; its log file has it all).
    pub stderr: bool,
    /// How long any single wait may take: for a line, a client command, a stop.
    pub wait: Duration,
    /// Leave the directory behind (its path is printed when `Up` drops), to read its logs after.
    pub keep_dir: bool,
    /// Extra environment variables of the supervisor (e.g. a `NOTIFY_SOCKET`).
    pub env: Vec<(String, std::ffi::OsString)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rust_log: "info".into(),
            stderr: true,
            wait: Duration::from_secs(10),
            keep_dir: false,
            env: Vec::new(),
        }
    }
}

/// `chat-supervisor up` in a temporary directory, its stdout lines collected as they come. Dropped,
/// it kills the supervisor (SIGKILL: its children notice and end) and removes the directory.
pub struct Up {
    /// The supervisor; its log is `logs/supervisor.log`.
    pub proc: Proc,
    /// Where `servers.toml`, `logs/` and `run/` are.
    pub dir: TempDir,
    stdout: Stdout,
    bin: PathBuf,
    wait: Duration,
    keep_dir: bool,
}

impl Up {
    /// Writes `config` as `servers.toml` in a new temporary directory and starts `bin up` there.
    pub fn start(bin: impl AsRef<Path>, config: &str, options: &Options) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("chat-up-").tempdir()?;
        std::fs::write(dir.path().join("servers.toml"), config)?;
        Self::start_in(bin, dir, options)
    }

    /// Starts `bin up` in `dir`, which holds a `servers.toml` already.
    pub fn start_in(bin: impl AsRef<Path>, mut dir: TempDir, options: &Options) -> Result<Self> {
        let bin = bin.as_ref().to_path_buf();
        dir.disable_cleanup(options.keep_dir);
        let mut child = Command::new(&bin)
            .arg("up")
            .current_dir(dir.path())
            .env("RUST_LOG", &options.rust_log)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if options.stderr {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .with_context(|| format!("starting {} up", bin.display()))?;
        let stdout = Stdout::capture(&mut child)?;
        let log = dir.path().join("logs/supervisor.log");
        Ok(Self {
            proc: Proc { child, log },
            dir,
            stdout,
            bin,
            wait: options.wait,
            keep_dir: options.keep_dir,
        })
    }

    /// Waits for the first stdout line containing `needle` that no earlier wait took.
    pub fn wait_for(&mut self, needle: &str) -> Result<String> {
        self.stdout.wait_for(needle, self.wait)
    }

    /// Every stdout line so far.
    pub fn seen(&self) -> &[String] {
        self.stdout.seen()
    }

    /// Waits for the next `listening` line of server `name`: its address and the frontend's pid.
    pub fn listening(&mut self, name: &str) -> Result<(SocketAddr, u32)> {
        let line = self.wait_for(&format!("listening name={name} "))?;
        let value = |key| field(&line, key).with_context(|| format!("no {key} in {line:?}"));
        let addr = value("addr=")?
            .parse()
            .with_context(|| format!("the address in {line:?}"))?;
        let pid = value("pid=")?.parse().with_context(|| format!("the pid in {line:?}"))?;
        Ok((addr, pid))
    }

    /// Runs a client command (`status`, `reload`, `down`, …) against this supervisor, to its end.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        let mut command = Command::new(&self.bin);
        command.args(args).current_dir(self.dir.path());
        proc::output(command, self.wait)
    }

    /// `status --json`, parsed: `{"servers": [one row per child], "config_error": …}` (it exits
    /// with 3 when a server is stopped or failed, which is no error here).
    pub fn status_json(&self) -> Result<Value> {
        let out = self.cli(&["status", "--json"])?;
        if !matches!(out.status.code(), Some(0 | 3)) {
            bail!(
                "status failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("parsing status --json")
    }

    /// The rows of `status --json`: one per child.
    pub fn status(&self) -> Result<Vec<Value>> {
        match self.status_json()?["servers"].take() {
            Value::Array(rows) => Ok(rows),
            other => bail!("no servers in status --json: {other}"),
        }
    }

    /// The `status` row of `name`.
    pub fn row(&self, name: &str) -> Result<Value> {
        let rows = self.status()?;
        rows.into_iter()
            .find(|r| r["name"] == name)
            .with_context(|| format!("no {name} in status"))
    }

    /// The pid of each running child (`kernel` and each server), by name.
    pub fn children(&self) -> Result<BTreeMap<String, u32>> {
        let rows = self.status()?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["pid"].as_u64()? as u32)))
            .collect())
    }

    /// Resident memory in KiB of the supervisor (as `supervisor`) and of each running child.
    pub fn rss_kib(&self) -> Result<BTreeMap<String, u64>> {
        let mut all = BTreeMap::from([("supervisor".to_string(), self.proc.rss_kib())]);
        for (name, pid) in self.children()? {
            all.insert(name, proc::rss_kib(pid));
        }
        Ok(all)
    }

    /// Proportional memory in KiB ([`proc::pss_kib`]) of the supervisor and of each running child.
    pub fn pss_kib(&self) -> Result<BTreeMap<String, u64>> {
        let mut all = BTreeMap::from([("supervisor".to_string(), proc::pss_kib(self.proc.pid()))]);
        for (name, pid) in self.children()? {
            all.insert(name, proc::pss_kib(pid));
        }
        Ok(all)
    }

    /// Replaces `servers.toml` as editors do: writes beside it, then renames over it.
    pub fn write_config(&self, text: &str) -> Result<()> {
        let tmp = self.dir.path().join(".servers.toml.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, self.dir.path().join("servers.toml"))?;
        Ok(())
    }

    /// Stops the supervisor with SIGTERM and reaps it; an error if it took longer than a wait.
    pub fn stop(mut self) -> Result<ExitStatus> {
        proc::terminate(&mut self.proc.child, self.wait)
    }
}

impl Drop for Up {
    /// A failing test shows the warnings and errors of every log, to say what went wrong.
    fn drop(&mut self) {
        if std::thread::panicking() {
            show_notable_lines(&self.dir.path().join("logs"));
        }
        if self.keep_dir {
            eprintln!("kept {}", self.dir.path().display());
        }
    }
}

fn show_notable_lines(logs: &Path) {
    let Ok(entries) = std::fs::read_dir(logs) else {
        return;
    };
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let notable: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
            .collect();
        eprintln!("--- {} ({} notable lines)", entry.path().display(), notable.len());
        for line in notable.iter().rev().take(40).rev() {
            eprintln!("{line}");
        }
    }
}
