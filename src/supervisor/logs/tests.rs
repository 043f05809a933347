//! Printing and following logs across rotations and restarts, and what a name can be.

use super::*;
use std::os::unix::fs::symlink;

fn tail_of(text: &str, n: usize) -> (String, usize) {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let (bytes, count) = tail(&file, text.len() as u64, n).unwrap();
    (String::from_utf8(bytes).unwrap(), count)
}

#[test]
fn tail_takes_the_last_lines() {
    assert_eq!(tail_of("a\nb\nc\n", 2), ("b\nc\n".into(), 2));
    assert_eq!(tail_of("a\nb\nc\n", 9), ("a\nb\nc\n".into(), 3));
    assert_eq!(tail_of("a\nb", 1), ("b".into(), 1));
    assert_eq!(tail_of("a\n\n", 1), ("\n".into(), 1));
    assert_eq!(tail_of("a\nb\n", 0), (String::new(), 0));
    assert_eq!(tail_of("", 3), (String::new(), 0));
    // Across read chunks.
    let long: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(tail_of(&long, 3), ("line 49997\nline 49998\nline 49999\n".into(), 3));
    assert_eq!(tail_of(&long, 50_000).1, 50_000);
}

#[test]
fn the_last_lines_reach_back_into_earlier_days() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.log.2000-01-01"), "1\n2\n").unwrap();
    fs::write(dir.path().join("x.log.2000-01-02"), "3\n4").unwrap();
    fs::write(dir.path().join("x.log.2000-01-03"), "5\n").unwrap();
    symlink(dir.path().join("x.log.2000-01-03"), dir.path().join("x.log")).unwrap();
    let mut out = Vec::new();
    start(dir.path(), "x", 4, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "2\n3\n4\n5\n");
    let mut out = Vec::new();
    start(dir.path(), "x", 1, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "5\n");
}

/// Appends `from..to` as numbered lines to `path`.
fn append(path: &Path, lines: std::ops::Range<u32>) {
    let mut file = File::options().create(true).append(true).open(path).unwrap();
    for i in lines {
        writeln!(file, "line {i}").unwrap();
    }
}

#[test]
fn following_loses_no_line_across_rotations_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("x.log");
    let day = |d: u32| dir.path().join(format!("x.log.2000-01-0{d}"));
    let moved = |d: u32| {
        fs::remove_file(&live).unwrap();
        symlink(day(d), &live).unwrap();
    };
    append(&day(1), 0..10);
    symlink(day(1), &live).unwrap();
    let mut out = Vec::new();
    let mut follower = start(dir.path(), "x", 0, &mut out).unwrap();
    append(&live, 10..20);
    follower.poll(&mut out).unwrap();
    // The appender's rotation: the last lines of the day, a new file, the name moved to it,
    // and lines in the new file, all before the follower looks again.
    append(&day(1), 20..30);
    append(&day(2), 30..40);
    fs::remove_file(&live).unwrap();
    follower.poll(&mut out).unwrap(); // the name is missing for a moment
    symlink(day(2), &live).unwrap();
    append(&day(2), 40..50);
    follower.poll(&mut out).unwrap();
    // Two of them before it looks again.
    append(&day(3), 50..60);
    moved(3);
    append(&day(4), 60..70);
    moved(4);
    follower.poll(&mut out).unwrap();
    // Rotations by renaming the live file, as logrotate does; two at once as well.
    fs::remove_file(&live).unwrap();
    fs::rename(day(4), &live).unwrap();
    append(&live, 70..80);
    fs::rename(&live, day(5)).unwrap();
    append(&live, 80..90);
    follower.poll(&mut out).unwrap();
    fs::rename(&live, day(6)).unwrap();
    append(&live, 90..100);
    fs::rename(&live, day(7)).unwrap();
    append(&live, 100..110);
    follower.poll(&mut out).unwrap();
    // A restart of the writer appends to the same file.
    append(&live, 110..120);
    follower.poll(&mut out).unwrap();
    // Truncated: read again from its start.
    fs::write(&live, "").unwrap();
    append(&live, 120..121);
    follower.poll(&mut out).unwrap();
    let expected: String = (10..121).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn a_log_that_is_not_there_yet_is_followed_once_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let mut follower = start(dir.path(), "x", 10, &mut out).unwrap();
    follower.poll(&mut out).unwrap();
    append(&dir.path().join("x.log"), 0..2);
    follower.poll(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "line 0\nline 1\n");
}

#[test]
fn an_unknown_name_is_an_error_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("servers.toml");
    fs::write(
        &config,
        "[supervisor]\nlog_dir = \"l\"\n[[server]]\nname = \"web\"\nkind = \"ws\"\nport = 0\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("l")).unwrap();
    fs::write(dir.path().join("l/old.log"), "").unwrap();
    assert_eq!(
        locate(&config, None).unwrap(),
        (dir.path().join("l"), "supervisor".into())
    );
    assert_eq!(locate(&config, Some("web")).unwrap().1, "web");
    assert_eq!(locate(&config, Some("old")).unwrap().1, "old");
    let err = locate(&config, Some("../web")).unwrap_err().to_string();
    assert_eq!(
        err,
        "no log named `../web`; known: kernel, old, web (or no NAME for the supervisor's)"
    );
}
