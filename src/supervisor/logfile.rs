//! Log files, written by tracing-appender: each log lives in `NAME.log.YYYY-MM-DD` (a new file at
//! midnight UTC, the oldest pruned beyond `log_keep`), and `NAME.log` is a symlink to the live one
//! (the appender's `latest_symlink`), so `grep listening logs/supervisor.log` and `tail -F` work
//! whatever the day. Lines reach the disk on a thread of each log's own
//! (`tracing_appender::non_blocking`), through a bounded queue: the supervisor's async thread
//! never waits for the disk unless that queue is full.
//!
//! The appender opens its files and replaces the symlink without refusing links (no
//! `O_NOFOLLOW`). That is safe because `up` refuses a log folder that anyone else may write, so
//! nobody else can put a link there; a link found among the dated files at start (left from a time
//! the folder was open) is refused, a link at `NAME.log` is replaced, never followed, and the
//! umask keeps every file we create closed to others' writes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};

/// The supervisor's own log's name.
pub const SUPERVISOR: &str = "supervisor";
/// The target of lines for the supervisor's file only, not stdout: why `up` failed, which `main`
/// prints to stderr already.
pub const FILE_ONLY: &str = "file_only";
/// Lines of the supervisor's log that may wait for the disk. Past that the logging thread waits
/// (lossy = false): a `listening` line is never lost, and the supervisor logs so little that only
/// a disk stalled for long fills it.
const SUPERVISOR_QUEUE: usize = 8192;
/// Chunks (up to 8 KiB each) of a child's output that may wait for the disk. Past that the copy
/// waits, the child's pipe fills, and the child waits: nothing is lost, the supervisor never
/// blocks, and memory stays bounded.
const CHILD_QUEUE: usize = 1024;
/// How often a copy waiting for room in a full queue tries again.
const RETRY: Duration = Duration::from_millis(10);

/// The supervisor's log (file, then stdout) for the life of `up`; dropping it writes out what is
/// queued.
pub struct Logging(#[allow(dead_code)] WorkerGuard);

/// Sends every supervisor line to `logs/supervisor.log` and stdout, in that order and on one
/// thread: once a line shows on stdout, it is in the file too. `RUST_LOG` filters (see
/// [`filter`](crate::logging::filter)).
pub fn init(dir: &Path, keep: usize) -> Result<Logging> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    close_umask();
    let file = appender(dir, SUPERVISOR, keep)?;
    let (channel, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(SUPERVISOR_QUEUE)
        .thread_name("supervisor-log")
        .finish(Outputs {
            file,
            stdout: io::stdout(),
        });
    let filter = crate::logging::filter();
    let to = |tag| Tagged {
        channel: channel.clone(),
        tag,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(to(FILE))
                .with_ansi(false)
                .with_target(false),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(to(STDOUT))
                .with_ansi(io::stdout().is_terminal())
                .with_target(false)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| m.target() != FILE_ONLY)),
        )
        .try_init()?;
    Ok(Logging(guard))
}

/// Writes why `up` failed to the supervisor's file, on one line.
pub fn failed(error: &anyhow::Error) {
    let message = format!("{error:#}").replace("\n  ", " ").replace('\n', "; ");
    tracing::error!(target: FILE_ONLY, "up failed: {message}");
}

/// Files we create (the appender takes no mode) are never writable by others.
fn close_umask() {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::S_IWGRP | Mode::S_IWOTH);
    umask(old | Mode::S_IWGRP | Mode::S_IWOTH);
}

/// A child's log: its stdout and stderr, copied in as they come. Clones share one file and one
/// thread, which ends (writing out what is queued) when the last clone goes.
#[derive(Clone)]
pub struct ChildLog {
    channel: NonBlocking,
    full: ErrorCounter,
    _thread: Arc<WorkerGuard>,
}

impl ChildLog {
    pub fn open(dir: &Path, name: &str, keep: usize) -> Result<Self> {
        // Lossy, so that a full queue never blocks the supervisor's thread: a refused chunk is
        // offered again (see `write`), so nothing is lost either.
        let (channel, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(CHILD_QUEUE)
            .thread_name(&format!("{name}-log"))
            .finish(appender(dir, name, keep)?);
        Ok(Self {
            full: channel.error_counter(),
            channel,
            _thread: Arc::new(guard),
        })
    }

    /// Queues `bytes`, waiting while the queue is full.
    pub async fn write(&mut self, bytes: &[u8]) {
        loop {
            // A refusal counts in `full`. Nothing can write to this queue between the two reads:
            // its writers are tasks of the supervisor's single thread, and this does not yield.
            let before = self.full.dropped_lines();
            let _ = self.channel.write(bytes);
            if self.full.dropped_lines() == before {
                return;
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// The daily file appender behind `dir/NAME.log`.
pub fn appender(dir: &Path, name: &str, keep: usize) -> Result<RollingFileAppender> {
    let live = format!("{name}.log");
    refuse_dated_links(dir, &live)?;
    date_plain_file(dir, &live)?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(&live)
        .latest_symlink(&live)
        // The live file counts among them. When it opens, the appender counts the day's file as
        // well, if there is one: a restart keeps one fewer until the next rotation.
        .max_log_files(keep + 1)
        .build(dir)
        .with_context(|| format!("opening {}", dir.join(&live).display()))
}

/// Fails on a symlink named like a dated log: the appender would write where it points.
fn refuse_dated_links(dir: &Path, live: &str) -> Result<()> {
    let prefix = format!("{live}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(()); // the appender says why
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) && entry.file_type()?.is_symlink() {
            bail!(
                "{} is a symbolic link; a log file must be a plain file",
                entry.path().display()
            );
        }
    }
    Ok(())
}

/// A plain `NAME.log` becomes the dated file of the day it was last written: the appender would
/// remove it to put its symlink there.
fn date_plain_file(dir: &Path, live: &str) -> Result<()> {
    let path = dir.join(live);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if !meta.is_file() {
        bail!("{} is not a log file", path.display());
    }
    let day = chrono::DateTime::<chrono::Utc>::from(meta.modified()?).format("%Y-%m-%d");
    let dated = (0..)
        .map(|n| match n {
            0 => dir.join(format!("{live}.{day}")),
            n => dir.join(format!("{live}.{day}.{n}")),
        })
        .find(|p| fs::symlink_metadata(p).is_err())
        .expect("a free name");
    fs::rename(&path, &dated).with_context(|| format!("renaming {} to {}", path.display(), dated.display()))
}

const FILE: u8 = 0;
const STDOUT: u8 = 1;

/// A writer for one of the supervisor's two outputs: each line is queued with a first byte
/// saying which, so that both go through one queue, in order.
#[derive(Clone)]
struct Tagged {
    channel: NonBlocking,
    tag: u8,
}

impl Write for Tagged {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut tagged = Vec::with_capacity(1 + line.len());
        tagged.push(self.tag);
        tagged.extend_from_slice(line);
        self.channel.write_all(&tagged)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Tagged {
    type Writer = Tagged;

    fn make_writer(&'a self) -> Tagged {
        self.clone()
    }
}

/// The logging thread's end of the supervisor's queue.
struct Outputs {
    file: RollingFileAppender,
    stdout: io::Stdout,
}

impl Write for Outputs {
    fn write(&mut self, tagged: &[u8]) -> io::Result<usize> {
        match tagged.split_first() {
            // A closed stdout must not stop the file.
            Some((&STDOUT, line)) => drop(self.stdout.write_all(line)),
            Some((_, line)) => self.file.write_all(line)?,
            None => {}
        }
        Ok(tagged.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.stdout.flush();
        self.file.flush()
    }
}

/// The dated files of a log (`NAME.log.*`), oldest first (ISO dates sort by time).
pub fn dated_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.log.");
    let mut dated: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    dated.sort();
    dated
}

#[cfg(test)]
mod tests;
