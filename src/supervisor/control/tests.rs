//! The control socket's requests and replies, and the status table.

use super::*;

#[test]
fn requests_are_small_json() {
    let text = serde_json::to_string(&Request::Restart {
        names: vec!["web".into()],
    })
    .unwrap();
    assert_eq!(text, r#"{"cmd":"restart","names":["web"]}"#);
    assert_eq!(
        serde_json::from_str::<Request>(r#"{"cmd":"status"}"#).unwrap(),
        Request::Status
    );
}

fn row(name: &str, state: &str) -> Row {
    Row {
        name: name.into(),
        kind: "tcp".into(),
        address: "127.0.0.1:1234".into(),
        pid: Some(42),
        state: state.into(),
        uptime_secs: Some(3725),
        restarts: 1,
        users: Some(3),
    }
}

#[test]
fn table_aligns_columns() {
    let text = table(&[row("twisted", "running")], false);
    assert_eq!(
        text,
        "NAME     KIND  ADDRESS         PID  STATE    UPTIME  RESTARTS  USERS\n\
         twisted  tcp   127.0.0.1:1234  42   running  1h2m    1         3\n"
    );
}

#[test]
fn states_are_coloured_and_columns_still_line_up() {
    let text = table(
        &[
            row("a", "running"),
            row("b", "stopped"),
            row("c", "failed"),
            row("d", "backoff"),
        ],
        true,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "NAME  KIND  ADDRESS         PID  STATE    UPTIME  RESTARTS  USERS"
    );
    assert_eq!(
        lines[1],
        "a     tcp   127.0.0.1:1234  42   \x1b[32mrunning\x1b[0m  1h2m    1         3"
    );
    assert_eq!(
        lines[2],
        "b     tcp   127.0.0.1:1234  42   \x1b[2mstopped\x1b[0m  1h2m    1         3"
    );
    assert!(lines[3].contains("\x1b[31mfailed\x1b[0m   1h2m"), "{:?}", lines[3]);
    assert!(lines[4].contains("\x1b[33mbackoff\x1b[0m  1h2m"), "{:?}", lines[4]);
}
