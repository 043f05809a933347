//! The kernel's Unix socket: a private directory, mode 0600, stale files replaced, live ones not,
//! and peers of another uid refused.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::Path;

use anyhow::{Context, Result, bail};
use tokio::net::{UnixListener, UnixStream};

/// Binds the kernel socket at `path`.
///
/// The directory is created with mode 0700 if missing, and refused if another user owns it or
/// can enter it: the socket's own mode is set only after `bind`, so the directory is what keeps
/// other users out meanwhile. A socket file nobody answers on (a dead kernel's) is replaced; one a
/// live kernel answers on is an error.
pub fn bind(path: &Path) -> Result<UnixListener> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    private_dir(dir)?;
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            bail!("{} exists and is not a socket; not replacing it", path.display())
        }
        Ok(_) => match StdUnixStream::connect(path) {
            Ok(_) => bail!("a kernel is already serving {}", path.display()),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing the stale socket of a dead kernel");
                fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("probing {}", path.display())),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    let listener = StdUnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(listener)?)
}

/// Makes sure `dir` exists, is ours, and is closed to everyone else.
pub fn private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let meta = fs::metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        bail!("{} belongs to uid {}, not to us (uid {me})", dir.display(), meta.uid());
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is open to other users (mode {mode:o}); run `chmod 700` on it or use another directory",
            dir.display()
        );
    }
    Ok(())
}

/// True if the peer runs as our own uid; anyone else is refused.
pub fn same_user(stream: &UnixStream) -> std::io::Result<bool> {
    Ok(stream.peer_cred()?.uid() == nix::unistd::geteuid().as_raw())
}
