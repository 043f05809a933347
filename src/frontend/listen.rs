//! Where a frontend's listening socket comes from: inherited as fd 3 under the systemd
//! `LISTEN_FDS` convention (how the supervisor runs it, keeping its own copy so that connections
//! wait in the backlog across a restart), or bound from `--listen` when run by hand.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};

/// The first inherited descriptor, by the convention.
pub const LISTEN_FDS_START: i32 = 3;

/// The inherited listener if `LISTEN_FDS` names one for this process, else one bound to `addr`.
pub fn listener(addr: Option<SocketAddr>) -> Result<TcpListener> {
    let listener = match (inherited()?, addr) {
        (Some(listener), _) => listener,
        (None, Some(addr)) => TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?,
        (None, None) => bail!("no listening socket: pass --listen ADDR or inherit one (LISTEN_FDS=1, fd 3)"),
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Takes fd 3 if `LISTEN_FDS` is at least 1 and `LISTEN_PID`, when set, is our pid. (The
/// supervisor leaves `LISTEN_PID` unset: it cannot know the pid before `exec` without code that
/// is unsafe after `fork`.)
fn inherited() -> Result<Option<TcpListener>> {
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("LISTEN_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return Ok(None);
    }
    let count: u32 = count
        .parse()
        .with_context(|| format!("LISTEN_FDS={count:?} is not a number"))?;
    if count < 1 {
        return Ok(None);
    }
    std::fs::metadata(format!("/proc/self/fd/{LISTEN_FDS_START}")).context("LISTEN_FDS is set but fd 3 is not open")?;
    // SAFETY: fd 3 is open (checked above) and, by the LISTEN_FDS convention, handed to this
    // process to own; nothing else in it takes fd 3.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    let listener = TcpListener::from(fd);
    listener.local_addr().context("fd 3 is not a TCP listening socket")?;
    Ok(Some(listener))
}

/// Arranges for `command`'s child to inherit `listener` as fd 3, with `LISTEN_FDS=1` and
/// `LISTEN_FDNAMES=name`. The caller keeps its own copy open, so connections queue in the backlog
/// while no child is accepting.
pub fn hand_over(command: &mut std::process::Command, listener: &impl std::os::fd::AsRawFd, name: &str) {
    use std::os::unix::process::CommandExt;
    let fd = listener.as_raw_fd();
    command
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", name)
        .env_remove("LISTEN_PID");
    // SAFETY: runs between fork and exec; it only calls dup2/fcntl, which are async-signal-safe,
    // and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
            if fd == LISTEN_FDS_START {
                // Already in place: only its close-on-exec flag must go.
                nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
            } else {
                // dup2 clears close-on-exec on the copy; the copy is the child's to keep.
                let copy = nix::unistd::dup2_raw(borrowed, LISTEN_FDS_START)?;
                std::mem::forget(copy);
            }
            Ok(())
        });
    }
}
