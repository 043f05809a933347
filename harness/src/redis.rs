//! A `redis-server` of a test's or a benchmark's own (Debian's, 7.0), on a Unix socket in a
//! temporary directory, keeping nothing on disk: started, killed, started again empty, and asked
//! how much work it did.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

/// A redis-server, killed on drop.
pub struct Redis {
    dir: TempDir,
    child: Option<Child>,
}

impl Redis {
    /// Starts one and waits until it answers.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("chat-redis-").tempdir()?;
        let mut redis = Self { dir, child: None };
        redis.spawn()?;
        Ok(redis)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Its address, as `[cluster] redis` takes it.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> Result<()> {
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(server()?)
            .args([
                "--port",
                "0",
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (scripts/install-test-deps.sh installs it)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.query("PING").is_ok_and(|r| r.starts_with("+PONG")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer on {} within 10 s", socket.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills it (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same socket.
    pub fn restart_empty(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// One inline command's answer, as text (enough for `PING`, `INFO`, `DBSIZE`).
    pub fn query(&self, command: &str) -> Result<String> {
        let mut stream = UnixStream::connect(self.socket())?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{command}\r\n").as_bytes())?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if complete(&answer) {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// A number from `INFO` (`total_commands_processed`, say).
    pub fn info(&self, section: &str, field: &str) -> Result<u64> {
        let text = self.query(&format!("INFO {section}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {field} in INFO {section}"))
    }

    /// How many times each command ran so far (`INFO commandstats`), by name; commands that
    /// scripts call count too.
    pub fn calls(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        let text = self.query("INFO commandstats")?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
                Some((name.to_string(), calls))
            })
            .collect())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a RESP answer is whole: a simple line, or a bulk string of its announced length.
fn complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match answer.first() {
        Some(b'$') => {
            let len: i64 = std::str::from_utf8(&answer[1..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            len < 0 || answer.len() >= end + 2 + len as usize + 2
        }
        _ => true,
    }
}

/// Debian's redis-server (in /usr/bin), or the one on PATH.
fn server() -> Result<PathBuf> {
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.exists() {
        return Ok(debian);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("redis-server"))
                .find(|p| p.exists())
        })
        .context("redis-server is not installed (scripts/install-test-deps.sh installs it)")
}
