//! The kernel's Unix socket: a private directory, mode 0600, stale files replaced, live ones not,
//! peers of another uid refused, and a socket file deleted under a running kernel noticed (by
//! device and inode) so that it can be bound again.

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

/// Which file a path names: its device and inode (of the path itself, not of a link's target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = fs::symlink_metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// True while `path` still names this file: not deleted, not replaced.
    pub fn still_at(&self, path: &Path) -> bool {
        Self::of(path).is_ok_and(|now| now == *self)
    }
}

/// Makes sure `dir` exists, is ours, and is closed to everyone else.
pub fn private_dir(dir: &Path) -> Result<()> {
    owned_dir(dir, 0o700, 0o077, "closed to other users: it is open to other users")
}

/// Makes sure `dir` exists (created with `mode`), belongs to us, and has none of the `forbidden`
/// mode bits; `want` says what is required, for the error.
pub fn owned_dir(dir: &Path, mode: u32, forbidden: u32, want: &str) -> Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    // Not following a symlink: another user's link to their own directory must not pass.
    let meta = fs::symlink_metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        bail!("{} belongs to uid {}, not to us (uid {me})", dir.display(), meta.uid());
    }
    let found = meta.mode() & 0o777;
    if found & forbidden != 0 {
        bail!(
            "{} must be {want} (mode {found:o}); run `chmod {:o} {}` or use another directory",
            dir.display(),
            found & !forbidden,
            dir.display()
        );
    }
    Ok(())
}

/// True if the peer runs as our own uid; anyone else is refused.
pub fn same_user(stream: &UnixStream) -> std::io::Result<bool> {
    Ok(stream.peer_cred()?.uid() == nix::unistd::geteuid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deleted_or_replaced_socket_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/kernel.sock");
        let _first = bind(&path).unwrap();
        let first = Identity::of(&path).unwrap();
        assert!(first.still_at(&path));

        fs::remove_file(&path).unwrap();
        assert!(!first.still_at(&path));

        let _second = bind(&path).unwrap();
        let second = Identity::of(&path).unwrap();
        assert!(second.still_at(&path));
        assert!(!first.still_at(&path), "a new socket at the same path is another file");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
