//! Readiness: `READY=1` on `$NOTIFY_SOCKET`, the systemd convention the supervisor listens for.
//!
//! Without the variable (a child run by hand) this does nothing.

use std::os::unix::net::UnixDatagram;

/// Tells whoever started us that we accept work now.
pub fn ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| socket.send_to(b"READY=1", &path));
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = ?path, "could not report readiness");
    }
}
