//! Dated log files: the symlink, a file a day, how many kept, no link followed, output in order.

use super::*;

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Returns once a file made now has a later creation time than `file`.
fn after_creation_of(file: &Path) {
    let Ok(created) = fs::metadata(file).and_then(|m| m.created()) else {
        return; // no creation times here: pruning goes by the dates in the names
    };
    let probe = file.with_file_name("probe");
    loop {
        fs::write(&probe, "").unwrap();
        let now = fs::metadata(&probe).unwrap().created().unwrap();
        fs::remove_file(&probe).unwrap();
        if now > created {
            return;
        }
    }
}

#[test]
fn the_live_name_is_a_symlink_to_todays_file_and_reads_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = appender(dir.path(), "x", 7).unwrap();
    writeln!(log, "listening name=x").unwrap();
    let live = dir.path().join("x.log");
    assert!(fs::symlink_metadata(&live).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_link(&live).unwrap(),
        dir.path().join(format!("x.log.{}", today()))
    );
    assert_eq!(fs::read_to_string(&live).unwrap(), "listening name=x\n");
    // Opened again the same day: appended to.
    writeln!(appender(dir.path(), "x", 7).unwrap(), "again").unwrap();
    assert_eq!(fs::read_to_string(&live).unwrap(), "listening name=x\nagain\n");
}

#[test]
fn a_later_day_gets_a_new_file_and_old_ones_beyond_log_keep_go() {
    let dir = tempfile::tempdir().unwrap();
    // Left by earlier days: five dated files, the live name pointing at the last.
    for day in ["2000-01-01", "2000-01-02", "2000-01-03", "2000-01-04", "2000-01-05"] {
        fs::write(dir.path().join(format!("x.log.{day}")), format!("{day}\n")).unwrap();
    }
    let last = dir.path().join("x.log.2000-01-05");
    std::os::unix::fs::symlink(&last, dir.path().join("x.log")).unwrap();
    // Pruning goes by creation time, which is coarse: today's file must come later.
    after_creation_of(&last);
    let mut log = appender(dir.path(), "x", 2).unwrap();
    writeln!(log, "today").unwrap();
    let found = names(dir.path());
    assert_eq!(found.len(), 4, "the live name, today's and 2 kept: {found:?}");
    assert!(found.contains(&format!("x.log.{}", today())), "{found:?}");
    assert_eq!(fs::read_to_string(dir.path().join("x.log")).unwrap(), "today\n");
    // Opened again the same day, the day's file counts among those kept; it is the newest,
    // so it stays even with log_keep = 1.
    drop(log);
    writeln!(appender(dir.path(), "x", 1).unwrap(), "again").unwrap();
    assert_eq!(names(dir.path()), ["x.log".to_string(), format!("x.log.{}", today())]);
    assert_eq!(fs::read_to_string(dir.path().join("x.log")).unwrap(), "today\nagain\n");
}

#[test]
fn a_plain_live_file_from_before_is_kept_as_a_dated_one() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("x.log");
    fs::write(&live, "old\n").unwrap();
    let before = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    fs::File::options()
        .write(true)
        .open(&live)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let mut log = appender(dir.path(), "x", 7).unwrap();
    writeln!(log, "new").unwrap();
    let day = chrono::DateTime::<chrono::Utc>::from(before).format("%Y-%m-%d");
    assert_eq!(
        fs::read_to_string(dir.path().join(format!("x.log.{day}"))).unwrap(),
        "old\n"
    );
    assert_eq!(fs::read_to_string(&live).unwrap(), "new\n");
    assert_eq!(dated_files(dir.path(), "x").len(), 2);
}

#[test]
fn links_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("target");
    fs::write(&target, "keep\n").unwrap();
    // A link at the live name is replaced, not written through.
    std::os::unix::fs::symlink(&target, dir.path().join("x.log")).unwrap();
    writeln!(appender(dir.path(), "x", 7).unwrap(), "line").unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
    assert_eq!(fs::read_to_string(dir.path().join("x.log")).unwrap(), "line\n");
    // A link among the dated files is refused.
    std::os::unix::fs::symlink(&target, dir.path().join("y.log.2099-01-01")).unwrap();
    let err = appender(dir.path(), "y", 7).unwrap_err();
    assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
}

#[tokio::test]
async fn a_childs_output_reaches_its_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ChildLog::open(dir.path(), "c", 7).unwrap();
    let mut other = log.clone();
    let mut expected = String::new();
    for i in 0..5000 {
        let line = format!("line {i}\n");
        if i % 2 == 0 {
            log.write(line.as_bytes()).await;
        } else {
            other.write(line.as_bytes()).await;
        }
        expected.push_str(&line);
    }
    // The last clone gone, the thread writes out the queue.
    drop((log, other));
    assert_eq!(fs::read_to_string(dir.path().join("c.log")).unwrap(), expected);
}
