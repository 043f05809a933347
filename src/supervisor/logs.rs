//! `chat-supervisor logs [NAME] [-n N] [-f]`: the last lines of the supervisor's log or of a
//! child's, and with `-f` every line after them as it is written, like `tail -F`. It follows the
//! live name `NAME.log`, not a file: when that leads to another file (the daily rotation), the old
//! file is read to its end first, then the new one from its start, so no line is lost; a child's
//! restart or a new `up` write on in the same file. It reads files only, so it works whether or not
//! `up` runs, and finds them from the config even if the servers in it are invalid.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::logfile::{SUPERVISOR, dated_files};

/// How often the live name is looked at when no change is reported (the folder may not exist yet,
/// or a change notice may be missed).
const POLL: Duration = Duration::from_millis(250);
/// Bytes read at a time.
const CHUNK: usize = 64 << 10;

/// Prints the last `lines` lines of the log of `name` (the supervisor's without one), then, with
/// `follow`, what is written to it until SIGINT or SIGTERM.
pub fn run(config: &Path, name: Option<&str>, lines: usize, follow: bool) -> Result<()> {
    let (dir, name) = locate(config, name)?;
    let mut out = io::stdout().lock();
    let printed = if follow {
        self::follow(&dir, &name, lines, &mut out)
    } else {
        start(&dir, &name, lines, &mut out).and_then(|follower| {
            if follower.open.is_none() && dated_files(&dir, &name).is_empty() {
                bail!("nothing logged yet: there is no {}", follower.path.display());
            }
            Ok(())
        })
    };
    match printed {
        // The reader went away (`logs | head`): done.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The log folder, and the log's name: `supervisor`, `kernel`, a server of the config, or one
/// whose `NAME.log` is in the folder (a server since removed).
fn locate(config: &Path, name: Option<&str>) -> Result<(PathBuf, String)> {
    let config = crate::config::load_partial(config)?;
    let name = name.unwrap_or(SUPERVISOR);
    let mut known: BTreeSet<String> = config.servers.iter().map(|s| s.settings.name.clone()).collect();
    known.insert("kernel".into());
    for entry in fs::read_dir(&config.log_dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(log) = file.strip_suffix(".log")
            && !log.is_empty()
            && log != SUPERVISOR
            && log
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            known.insert(log.to_string());
        }
    }
    if name != SUPERVISOR && !known.contains(name) {
        bail!(
            "no log named `{name}`; known: {} (or no NAME for the supervisor's)",
            known.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok((config.log_dir, name.to_string()))
}

/// Prints the last lines, then what comes, until a signal.
fn follow(dir: &Path, name: &str, lines: usize, out: &mut impl Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // Before anything shows: whoever sees the first line may stop us cleanly.
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (changed_tx, mut changed) = tokio::sync::mpsc::channel(1);
        let _watcher = watch(dir, changed_tx).ok();
        let mut follower = start(dir, name, lines, out)?;
        let mut poll = tokio::time::interval(POLL);
        loop {
            follower.poll(out)?;
            out.flush()?;
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                Some(()) = changed.recv() => {}
                _ = poll.tick() => {}
            }
        }
        // What was written up to the signal.
        follower.poll(out)?;
        out.flush()?;
        Ok(())
    })
}

/// Wakes `changed` on any change in the log folder.
fn watch(dir: &Path, changed: tokio::sync::mpsc::Sender<()>) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = changed.try_send(());
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Prints the last `lines` lines of the log; returns a follower placed after them.
fn start(dir: &Path, name: &str, lines: usize, out: &mut impl Write) -> Result<Follower> {
    let path = dir.join(format!("{name}.log"));
    let open = match File::open(&path) {
        Ok(file) => Some(Open::at_end(file)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let live = open.as_ref().map(|o| (&o.file, o.pos));
    out.write_all(&last_lines(dir, name, live, lines)?)?;
    Ok(Follower {
        path,
        dir: dir.to_path_buf(),
        name: name.to_string(),
        open,
        buf: vec![0; CHUNK],
    })
}

/// The last `n` lines of a log: of its live file's first `end` bytes, and if that has fewer, of
/// the dated files before it.
fn last_lines(dir: &Path, name: &str, live: Option<(&File, u64)>, n: usize) -> io::Result<Vec<u8>> {
    let mut wanted = n;
    let mut parts = Vec::new(); // newest first
    let mut live_id = None;
    if let Some((file, end)) = live {
        live_id = Some(id(&file.metadata()?));
        let (bytes, count) = tail(file, end, wanted)?;
        wanted -= count;
        parts.push(bytes);
    }
    for path in dated_files(dir, name).iter().rev() {
        if wanted == 0 {
            break;
        }
        let Ok(file) = File::open(path) else { continue };
        let meta = file.metadata()?;
        if Some(id(&meta)) == live_id {
            continue; // the live file, through its dated name
        }
        let (mut bytes, count) = tail(&file, meta.len(), wanted)?;
        if bytes.last().is_some_and(|b| *b != b'\n') {
            bytes.push(b'\n');
        }
        wanted -= count;
        parts.push(bytes);
    }
    parts.reverse();
    Ok(parts.concat())
}

/// The last `n` lines of `file`'s first `end` bytes, and how many lines that is (fewer if it has
/// fewer). A last line without its newline counts.
fn tail(file: &File, end: u64, n: usize) -> io::Result<(Vec<u8>, usize)> {
    if n == 0 || end == 0 {
        return Ok((Vec::new(), 0));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut at = end;
    let mut newlines = 0;
    let mut start = 0;
    'search: while at > 0 {
        let len = (at as usize).min(CHUNK);
        at -= len as u64;
        file.read_exact_at(&mut buf[..len], at)?;
        for i in (0..len).rev() {
            let offset = at + i as u64;
            // A newline that ends the file ends the last line; it does not start one.
            if buf[i] == b'\n' && offset != end - 1 {
                newlines += 1;
                if newlines == n {
                    start = offset + 1;
                    break 'search;
                }
            }
        }
    }
    let count = if newlines == n { n } else { newlines + 1 };
    let mut bytes = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut bytes, start)?;
    Ok((bytes, count))
}

/// The dated files after `old` and before `new` (or after `old`, if `new` is not dated): those
/// rotated away between two looks, in order.
fn between(dir: &Path, name: &str, old: (u64, u64), new: (u64, u64)) -> Vec<((u64, u64), PathBuf)> {
    let dated: Vec<_> = dated_files(dir, name)
        .into_iter()
        .filter_map(|path| Some((id(&fs::metadata(&path).ok()?), path)))
        .collect();
    let Some(from) = dated.iter().position(|(id, _)| *id == old) else {
        return Vec::new();
    };
    let to = dated.iter().position(|(id, _)| *id == new).unwrap_or(dated.len());
    dated.into_iter().take(to).skip(from + 1).collect()
}

/// Which file a path led to.
fn id(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Follows the file a path leads to, through its replacements.
struct Follower {
    path: PathBuf,
    /// Where the log's dated files are, and its name.
    dir: PathBuf,
    name: String,
    /// The file being read; `None` until the path leads to one.
    open: Option<Open>,
    buf: Vec<u8>,
}

/// A file being read, and how far.
struct Open {
    file: File,
    pos: u64,
    id: (u64, u64),
}

impl Open {
    fn at_end(file: File) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            pos: meta.len(),
            id: id(&meta),
            file,
        })
    }
}

impl Follower {
    /// Copies to `out` what was written since the last call: the rest of the file being read, and
    /// if the path now leads to another file, all of that one.
    fn poll(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.copy(out)?;
        let now = match fs::metadata(&self.path) {
            Ok(meta) => id(&meta),
            // Between the removal of the old name and the new one (a rotation), or not yet there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.open.as_ref().is_some_and(|o| o.id == now) {
            return Ok(());
        }
        // Replaced. Nothing is written to the old file once the new one is there: read what came
        // between the copy above and the switch, then any file rotated away since, then the new.
        self.copy(out)?;
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let new = id(&file.metadata()?);
        if let Some(old) = self.open.as_ref().map(|o| o.id) {
            for (id, path) in between(&self.dir, &self.name, old, new) {
                if let Ok(file) = File::open(path) {
                    self.open = Some(Open { file, pos: 0, id });
                    self.copy(out)?;
                }
            }
        }
        self.open = Some(Open { file, pos: 0, id: new });
        self.copy(out)
    }

    /// Copies the file being read from where it was to its end.
    fn copy(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        if open.file.metadata()?.len() < open.pos {
            open.pos = 0; // truncated: from its start again
        }
        loop {
            let n = open.file.read_at(&mut self.buf, open.pos)?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&self.buf[..n])?;
            open.pos += n as u64;
        }
    }
}

#[cfg(test)]
mod tests;
