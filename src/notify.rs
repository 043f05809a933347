//! Reporting to whoever started the process, by the systemd convention: `READY=1` once it serves,
//! and `WATCHDOG=1` every half of `$WATCHDOG_USEC` while its event loop runs, on the datagram
//! socket `$NOTIFY_SOCKET`. The supervisor (or systemd) kills a process whose pings stop: a hung
//! or stopped process is restarted like a crashed one.
//!
//! The supervisor reports the same way to whoever started it (systemd's `Type=notify`), and is
//! the `$NOTIFY_SOCKET` of its children.
//!
//! Without the variables (a child run by hand) this does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Tells whoever started us that we accept work now.
pub fn ready() {
    send(b"READY=1");
}

/// Tells whoever started us that we are stopping on purpose.
pub fn stopping() {
    send(b"STOPPING=1");
}

/// Pings the watchdog every half of `$WATCHDOG_USEC`, forever; returns at once without it.
///
/// It runs as a task of the process's event loop, so a loop that stops turning (a hang, a task
/// that never yields, SIGSTOP) stops the pings.
pub async fn watchdog() {
    let Some(every) = watchdog_interval() else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        send(b"WATCHDOG=1");
    }
}

/// Half of `$WATCHDOG_USEC`, if it is set to a positive number.
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn send(message: &[u8]) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        use std::os::unix::ffi::OsStrExt;
        match path.as_bytes().strip_prefix(b"@") {
            // systemd may name an abstract socket, `@` for its leading NUL.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message, &addr)
            }
            None => socket.send_to(message, &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = ?path, "could not report to the supervisor");
    }
}
