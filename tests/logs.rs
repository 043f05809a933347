//! Logs as a user meets them: a failed `up` leaving its reason in `logs/supervisor.log`.

mod util;

use std::path::Path;
use std::process::Command;

use util::{bin, server};

#[test]
fn a_failed_up_leaves_its_reason_in_the_supervisor_log() {
    // An address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("servers.toml"),
        format!("[[server]]\nname = \"busy\"\nkind = \"tcp\"\nport = {port}\n"),
    )
    .unwrap();
    let up = |dir: &Path| Command::new(bin()).arg("up").current_dir(dir).output().unwrap();
    let out = up(dir.path());
    assert!(!out.status.success());
    let reason = format!("server `busy`: cannot bind 127.0.0.1:{port}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&reason));
    let log = std::fs::read_to_string(dir.path().join("logs/supervisor.log")).unwrap();
    assert!(log.contains(&format!("ERROR up failed: {reason}")), "{log}");
    // Once: stderr has it already.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("up failed"));

    // An invalid config whose [supervisor] table is sound: its log folder is used.
    std::fs::write(
        dir.path().join("servers.toml"),
        "[supervisor]\nlog_dir = \"elsewhere\"\n[[server]]\nname = \"x\"\nkind = \"gopher\"\nport = 0\n",
    )
    .unwrap();
    assert!(!up(dir.path()).status.success());
    let log = std::fs::read_to_string(dir.path().join("elsewhere/supervisor.log")).unwrap();
    assert!(
        log.contains("up failed: servers.toml has 1 problem: servers.toml:5: server[1].kind"),
        "{log}"
    );

    // A log folder others may write is not used at all.
    let open = tempfile::tempdir().unwrap();
    std::fs::write(open.path().join("servers.toml"), server("x", "tcp")).unwrap();
    std::fs::create_dir(open.path().join("logs")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(open.path().join("logs"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = up(open.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("writable by us alone"));
    assert_eq!(std::fs::read_dir(open.path().join("logs")).unwrap().count(), 0);
}
