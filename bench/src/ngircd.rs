//! The peer: Debian's `ngircd`, an IRC server users know, run in the foreground on loopback with a
//! configuration of our own in a temporary folder, as close to our servers' benchmark settings as
//! it lets a configuration come: every connection from one address, no penalties for sending fast.
//!
//! What the configuration cannot lift is compiled in (ngIRCd 26): a client's commands are handled
//! at most 3 at a time per turn of the event loop (10 with user mode `+F`, which [`crate::irc`]
//! clients set as operators), its read buffer holds 2 KiB, a client whose unsent output passes
//! 32 KiB is disconnected ("Write buffer space exhausted"), and it listens with a backlog of 10.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chat_harness::Stdout;

use crate::irc::OPERATOR;

/// How long it may take to start or stop.
const WAIT: Duration = Duration::from_secs(30);

/// A running `ngircd -n`, killed and its folder removed on drop, or [`Ngircd::stop`]ped.
pub struct Ngircd {
    pub addr: SocketAddr,
    child: Child,
    /// Its log, read to the end so that it never writes into a closed pipe.
    log: Stdout,
    /// Holds `ngircd.conf` and an empty `conf.d`.
    dir: PathBuf,
}

impl Ngircd {
    /// Starts `bin` on a free loopback port; returns once it says it is ready.
    pub fn start(bin: &Path) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("chat-bench-ngircd-{}-{}", std::process::id(), unique()));
        let include = dir.join("conf.d");
        std::fs::create_dir_all(&include).with_context(|| format!("creating {}", include.display()))?;
        // Free now; ngircd binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.join("ngircd.conf");
        std::fs::write(&conf, config(port, &include))?;
        let spawned = Command::new(bin)
            .arg("--nodaemon")
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e).with_context(|| format!("starting {}", bin.display()));
            }
        };
        let stdout = Stdout::capture(&mut child)?;
        // Owned before the wait, so that a failed wait still kills it and removes the folder.
        let mut ngircd = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            log: stdout,
            dir,
        };
        ngircd.log.wait_for("ready.", WAIT)?;
        let listening = format!("Now listening on [127.0.0.1]:{port}");
        if !ngircd.log.seen().iter().any(|l| l.contains(&listening)) {
            bail!(
                "ngircd does not listen on port {port}:\n{}",
                ngircd.log.seen().join("\n")
            );
        }
        Ok(ngircd)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGTERM and reaps it. A slow stop is worth a word, not the run.
    pub fn stop(mut self) {
        if let Err(e) = chat_harness::terminate(&mut self.child, WAIT) {
            eprintln!("warning: ngircd: {e:#}");
        }
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A number no earlier call in this process returned, for folder names.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `ngircd.conf` (see ngircd.conf(5)): loopback only; no cap on connections, per address or in
/// all, nor on channels a client joins; no penalty time for fast senders (`MaxPenaltyTime = 0`);
/// no DNS, IDENT or PAM look-ups on connect; an operator account for user mode `+F`, which turns
/// a client's flood protection off; and `include` for `IncludeDir`, so that the system's
/// `/etc/ngircd/ngircd.conf.d` is not read.
pub fn config(port: u16, include: &Path) -> String {
    let (name, password) = OPERATOR;
    format!(
        "[Global]\n\
         Name = bench.invalid\n\
         Info = chat-bench peer\n\
         Listen = 127.0.0.1\n\
         Ports = {port}\n\
         MotdPhrase = chat-bench\n\
         \n\
         [Limits]\n\
         MaxConnections = 0\n\
         MaxConnectionsIP = 0\n\
         MaxJoins = 0\n\
         MaxNickLength = 30\n\
         MaxPenaltyTime = 0\n\
         \n\
         [Options]\n\
         DNS = no\n\
         Ident = no\n\
         PAM = no\n\
         IncludeDir = {}\n\
         \n\
         [Operator]\n\
         Name = {name}\n\
         Password = {password}\n",
        include.display()
    )
}

/// `ngircd --version`'s version: `26.1` of `ngIRCd 26.1-IDENT+IPv6+…`.
pub fn version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).with_context(|| format!("no version in {text:?}"))
}

fn parse_version(text: &str) -> Option<String> {
    let word = text.lines().next()?.split_whitespace().nth(1)?;
    Some(word.split('-').next()?.to_string())
}

/// The `ngircd` to run: `given`, else the first on `PATH`, else Debian's `/usr/sbin/ngircd`
/// (`/usr/sbin` is not on every user's `PATH`); None if there is none.
pub fn find(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(given) = given {
        return given.is_file().then(|| given.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("ngircd"))
        .chain([PathBuf::from("/usr/sbin/ngircd")])
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lifts_the_limits_on_loopback() {
        let conf = config(16667, Path::new("/tmp/x/conf.d"));
        for line in [
            "Listen = 127.0.0.1",
            "Ports = 16667",
            "MaxConnectionsIP = 0",
            "MaxJoins = 0",
            "MaxPenaltyTime = 0",
            "IncludeDir = /tmp/x/conf.d",
            "Password = chat-bench",
        ] {
            assert!(conf.lines().any(|l| l == line), "no {line:?} in\n{conf}");
        }
        // Every line is a section, a `name = value` or blank, as ngircd.conf(5) wants.
        for line in conf.lines() {
            assert!(
                line.is_empty() || (line.starts_with('[') && line.ends_with(']')) || line.contains(" = "),
                "{line:?}"
            );
        }
    }

    #[test]
    fn versions() {
        let text = "ngIRCd 26.1-IDENT+IPv6+IRCPLUS+PAM+SSL+SYSLOG+ZLIB-x86_64/pc/linux-gnu\nCopyright …\n";
        assert_eq!(parse_version(text).as_deref(), Some("26.1"));
        assert_eq!(parse_version(""), None);
    }
}
