//! Processes: a child killed and reaped on drop, bounded waits for one to end, and what /proc says
//! about any process (its memory, whether it is gone).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A child process and the log file it writes, killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far (empty before the file exists).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Bytes in its log so far.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// Resident memory in KiB.
    ///
    /// # Panics
    /// If the process is gone: a memory bound on a process that died must not pass.
    pub fn rss_kib(&self) -> u64 {
        assert!(
            !exited(self.pid()),
            "process {} is gone; no memory to measure",
            self.pid()
        );
        rss_kib(self.pid())
    }

    /// Sends `signal`.
    ///
    /// # Panics
    /// If the process was reaped already: signalling it then could hit another process.
    pub fn signal(&self, signal: Signal) {
        signal_pid(self.pid(), signal).unwrap_or_else(|e| panic!("{e:#}"));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn signal_pid(pid: u32, signal: Signal) -> Result<()> {
    kill(Pid::from_raw(pid as i32), signal).with_context(|| format!("{signal} to pid {pid}"))
}

/// Sends SIGTERM and reaps the child within `limit`; past it, SIGKILLs it and says so.
pub fn terminate(child: &mut Child, limit: Duration) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    signal_pid(child.id(), Signal::SIGTERM)?;
    if let Some(status) = reap(child, limit)? {
        return Ok(status);
    }
    child.kill()?;
    child.wait()?;
    bail!("pid {} did not stop within {limit:?} of SIGTERM: killed", child.id())
}

/// Waits up to `limit` for the child to end; None if it still runs.
fn reap(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `command` to its end with its output captured; killed and an error past `limit`.
pub(crate) fn output(mut command: Command, limit: Duration) -> Result<Output> {
    let what = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {what}"))?;
    let pid = child.id();
    // The pipes are read to their end on a thread, so a chatty command cannot block on them.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok(out.with_context(|| format!("running {what}"))?),
        Err(_) => {
            // Still unreaped (the thread waits on it), so the pid is still this command's.
            let _ = signal_pid(pid, Signal::SIGKILL);
            bail!("{what} did not end within {limit:?}")
        }
    }
}

/// Resident memory of `pid` in KiB, from /proc (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Proportional memory of `pid` in KiB (its private pages, and its share of pages it shares with
/// other processes, such as the binary's), from /proc; 0 once it is gone. Summed over processes,
/// this counts a shared page once, where summed RSS counts it in every process that maps it.
pub fn pss_kib(pid: u32) -> u64 {
    let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// True if no process has this pid, or only a zombie waiting to be reaped.
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.contains(") Z "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_limit_is_killed() {
        let mut sleep = Command::new("sleep");
        sleep.arg("10");
        let started = Instant::now();
        let err = output(sleep, Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().contains("did not end within"), "{err:#}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn terminate_reaps_and_memory_reads_zero_after() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id();
        assert!(rss_kib(pid) > 0);
        assert!(!exited(pid));
        let status = terminate(&mut child, Duration::from_secs(5)).unwrap();
        assert!(!status.success());
        assert!(exited(pid));
        assert_eq!(rss_kib(pid), 0);
    }
}
