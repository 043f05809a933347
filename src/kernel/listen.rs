//! The kernel's socket as it serves: it takes only peers of our own user, binds again if its file
//! is deleted (else restarted frontends, which find the kernel by path, could never reach it
//! again), backs off when accepting fails, and removes its file on the way out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::socket;

/// How often the kernel checks that its socket file is still there.
const SOCKET_CHECK: Duration = Duration::from_secs(1);
/// How long to wait after a failed accept (out of descriptors, most likely) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The bound kernel socket.
pub struct Listening {
    listener: UnixListener,
    file: SocketFile,
    check: tokio::time::Interval,
    /// The last failure to bind again, logged once rather than every second.
    rebind_error: Option<String>,
}

impl Listening {
    /// Binds the kernel socket at `path` (see [`socket::bind`]).
    pub fn bind(path: &Path) -> Result<Self> {
        let listener = socket::bind(path)?;
        let file = SocketFile {
            path: path.to_path_buf(),
            identity: socket::Identity::of(path)?,
        };
        let mut check = tokio::time::interval(SOCKET_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            listener,
            file,
            check,
            rebind_error: None,
        })
    }

    /// The next peer of our own user; `None` once `shutdown` fires.
    pub async fn accept(&mut self, shutdown: &CancellationToken) -> Option<UnixStream> {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = self.check.tick() => {
                    self.bind_again_if_gone();
                    continue;
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors, most likely: back off rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            match socket::same_user(&stream) {
                Ok(true) => return Some(stream),
                Ok(false) => {
                    tracing::warn!(cred = ?stream.peer_cred().ok(), "refused a peer running as another user")
                }
                Err(e) => tracing::warn!(error = %e, "refused a peer whose credentials are unreadable"),
            }
        }
    }

    /// Binds again if the socket file was deleted or replaced. Connected frontends keep their
    /// streams; only the listener is replaced.
    fn bind_again_if_gone(&mut self) {
        let path = &self.file.path;
        if self.file.identity.still_at(path) {
            return;
        }
        match socket::bind(path).and_then(|l| Ok((l, socket::Identity::of(path)?))) {
            Ok((new, identity)) => {
                tracing::warn!(socket = %path.display(), "the socket file was deleted or replaced; bound it again");
                self.listener = new;
                self.file.identity = identity;
                self.rebind_error = None;
            }
            Err(e) => {
                let e = format!("{e:#}");
                if self.rebind_error.as_ref() != Some(&e) {
                    tracing::warn!(socket = %path.display(), error = %e, "the socket file is gone and cannot be bound again");
                    self.rebind_error = Some(e);
                }
            }
        }
    }
}

/// The socket file this kernel bound; removed when the kernel stops, so the next one finds no
/// stale file, unless it is another's by then.
struct SocketFile {
    path: PathBuf,
    identity: socket::Identity,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.identity.still_at(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
