//! The lock that makes a second `up` on the same config refuse to start, naming the running pid.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

/// Holds `run_dir/supervisor.lock` open and locked, our pid in it, for as long as it lives.
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl Lock {
    /// Takes the lock of `run_dir`, or fails naming the supervisor that holds it for `config`.
    pub fn take(run_dir: &Path, config: &Path) -> Result<Self> {
        let path = run_dir.join("supervisor.lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, _)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "a supervisor is already running for {} (pid {}); stop it with `chat-supervisor down`",
                    config.display(),
                    pid.trim()
                );
            }
        };
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Self(file))
    }
}
