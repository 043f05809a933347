//! Where a frontend's listening socket comes from: inherited under the systemd `LISTEN_FDS`
//! convention (how the supervisor runs it, keeping its own copy so that connections wait in the
//! backlog across a restart; or systemd itself, with a socket unit), or bound from `--listen`
//! when run by hand.
//!
//! Inheriting goes through the `listenfd` crate: it checks `LISTEN_PID` when set (systemd sets
//! it; the supervisor cannot know the pid before `exec` without code that is unsafe after `fork`,
//! so it leaves it unset, which listenfd accepts) and that the descriptor is a TCP socket.

use std::net::{SocketAddr, TcpListener};

use anyhow::{Context, Result, bail};

/// The first inherited descriptor, by the convention.
pub const LISTEN_FDS_START: i32 = 3;

/// The inherited listener if `LISTEN_FDS` names one for this process, else one bound to `addr`.
///
/// Call it before any thread starts: it removes `LISTEN_FDS` and `LISTEN_PID` from the
/// environment (so that nothing this process starts inherits them), which is sound only while
/// no other thread reads the environment.
pub fn listener(addr: Option<SocketAddr>) -> Result<TcpListener> {
    let inherited = listenfd::ListenFd::from_env()
        .take_tcp_listener(0)
        .context("LISTEN_FDS is set but fd 3 is not a TCP socket")?;
    let listener = match (inherited, addr) {
        (Some(listener), _) => listener,
        (None, Some(addr)) => TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?,
        (None, None) => bail!("no listening socket: pass --listen ADDR or inherit one (LISTEN_FDS=1, fd 3)"),
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Arranges for `command`'s child to inherit `listener` as fd 3, with `LISTEN_FDS=1` and
/// `LISTEN_FDNAMES=name`. The caller keeps its own copy open, so connections queue in the backlog
/// while no child is accepting.
pub fn pass_listener(
    command: &mut std::process::Command,
    listener: &impl std::os::fd::AsFd,
    name: &str,
) -> std::io::Result<()> {
    command
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", name)
        .env_remove("LISTEN_PID");
    crate::sys::exec::pass_fd(command, listener, LISTEN_FDS_START)
}
