//! Log files that rotate daily and prune themselves: the live file keeps its plain name
//! (`logs/NAME.log`, so `grep listening logs/supervisor.log` always works); at the first write of a
//! new day it is renamed `NAME.log.YYYY-MM-DD` and the oldest dated files beyond `keep` go.
//!
//! tracing-appender's rolling writer names the live file by date, which would break that grep, so
//! rotation is done here; tracing still formats every line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{Local, NaiveDate};

/// One daily-rotated log file.
pub struct DailyFile {
    dir: PathBuf,
    name: String,
    keep: usize,
    day: NaiveDate,
    file: File,
}

impl DailyFile {
    /// Opens (appending) `dir/NAME.log`. A file last written on an earlier day is rotated first.
    pub fn open(dir: &Path, name: &str, keep: usize) -> io::Result<Self> {
        let path = dir.join(format!("{name}.log"));
        let day = fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| chrono::DateTime::<Local>::from(t).date_naive())
            .unwrap_or_else(|_| Local::now().date_naive());
        let mut me = Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            keep,
            day,
            file: append(&path)?,
        };
        me.rotate_if_new_day()?;
        Ok(me)
    }

    /// Shared between tasks (a child's stdout and stderr both land here).
    pub fn shared(self) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(self))
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    fn rotate_if_new_day(&mut self) -> io::Result<()> {
        let today = Local::now().date_naive();
        if today == self.day {
            return Ok(());
        }
        let dated = self
            .dir
            .join(format!("{}.log.{}", self.name, self.day.format("%Y-%m-%d")));
        fs::rename(self.path(), dated)?;
        self.file = append(&self.path())?;
        self.day = today;
        self.prune()
    }

    /// Removes dated files beyond the newest `keep`.
    fn prune(&self) -> io::Result<()> {
        let prefix = format!("{}.log.", self.name);
        let mut dated: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        dated.sort(); // ISO dates sort by time
        let excess = dated.len().saturating_sub(self.keep);
        for old in &dated[..excess] {
            fs::remove_file(old)?;
        }
        Ok(())
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A failed rotation must not lose the line: keep writing to the current file.
        let _ = self.rotate_if_new_day();
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Opens a log for appending; a symlink in its place is refused (O_NOFOLLOW), so nobody can make
/// us write into another file.
fn append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_yesterday_is_rotated_and_old_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for day in ["2026-01-01", "2026-01-02", "2026-01-03"] {
            fs::write(dir.path().join(format!("x.log.{day}")), day).unwrap();
        }
        let live = dir.path().join("x.log");
        fs::write(&live, "old\n").unwrap();
        let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        File::options()
            .write(true)
            .open(&live)
            .unwrap()
            .set_modified(yesterday)
            .unwrap();

        let mut log = DailyFile::open(dir.path(), "x", 2).unwrap();
        writeln!(log, "new").unwrap();
        assert_eq!(fs::read_to_string(&live).unwrap(), "new\n");
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let rotated = format!(
            "x.log.{}",
            chrono::DateTime::<Local>::from(yesterday).format("%Y-%m-%d")
        );
        assert_eq!(names, ["x.log".to_string(), "x.log.2026-01-03".into(), rotated]);
    }

    #[test]
    fn a_symlink_in_place_of_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "keep\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("z.log")).unwrap();
        assert!(DailyFile::open(dir.path(), "z", 7).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
    }

    #[test]
    fn appends_to_todays_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("y.log"), "one\n").unwrap();
        let mut log = DailyFile::open(dir.path(), "y", 7).unwrap();
        writeln!(log, "two").unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("y.log")).unwrap(), "one\ntwo\n");
    }
}
