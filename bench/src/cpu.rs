//! What a process has spent so far, from /proc: CPU seconds (`stat`) and write system calls
//! (`io`), read before and after a load to say what each delivery cost a frontend.

use anyhow::{Context, Result};
use nix::unistd::{SysconfVar, sysconf};

/// Clock ticks a second, the unit of /proc/PID/stat's times (`sysconf(_SC_CLK_TCK)`; 100, the
/// Linux value, if it cannot be read).
pub fn clock_ticks() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as u64,
        _ => 100,
    }
}

/// CPU seconds `pid` has used so far, user and system (all its threads).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = stat_ticks(&stat).with_context(|| format!("no utime and stime in {path}: {stat:?}"))?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

/// Write system calls `pid` has made so far (`write`, `writev`, …): `syscw` of /proc/PID/io.
pub fn write_syscalls(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    io_field(&io, "syscw").with_context(|| format!("no syscw in {path}"))
}

/// utime + stime, in clock ticks, of a /proc/PID/stat line: fields 14 and 15, counted after the
/// command name, which is in parentheses and may hold spaces and parentheses itself.
fn stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `key: value` line of /proc/PID/io.
fn io_field(io: &str, key: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_after_the_name() {
        let stat = "4242 (chat (s0) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 31 0 0 20 0 3 0 99 1 2";
        assert_eq!(stat_ticks(stat), Some(281));
        assert_eq!(stat_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn io_fields() {
        let io = "rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 37\nread_bytes: 0\n";
        assert_eq!(io_field(io, "syscw"), Some(37));
        assert_eq!(io_field(io, "syscr"), Some(10));
        assert_eq!(io_field(io, "cancelled"), None);
    }

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        let before = write_syscalls(me).unwrap();
        std::fs::write(std::env::temp_dir().join(format!("chat-bench-cpu-{me}")), b"x").unwrap();
        assert!(write_syscalls(me).unwrap() > before);
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("chat-bench-cpu-{me}")));
    }
}
