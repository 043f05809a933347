//! Logs as a user meets them: `chat-supervisor logs` (the last lines, an unknown name, `-f` across
//! rotations and a child's restart, ended by a signal), a failed `up` leaving its reason in
//! `logs/supervisor.log`, and a frontend's log telling each client's connect, login, logout and
//! end.

mod util;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use util::{Telnet, Up, WAIT, bin, connect_from, flood, run, server};

/// `chat-supervisor logs …` run to its end in `dir`.
fn logs(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("logs")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn numbered(lines: std::ops::Range<u32>) -> String {
    lines.map(|i| format!("line {i}\n")).collect()
}

/// `chat-supervisor logs … -f`, its stdout lines collected as they come.
struct Tail {
    child: Child,
    lines: Receiver<String>,
    /// Lines read but not yet matched by a wait.
    pending: Vec<String>,
}

impl Tail {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .arg("logs")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            pending: Vec::new(),
        }
    }

    /// The next line.
    fn next(&mut self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no line from `logs -f` within {WAIT:?}"))
    }

    /// The first line containing every one of `needles` that no earlier wait took.
    fn wait_for(&mut self, needles: &[&str]) -> String {
        let matches = |line: &String| needles.iter().all(|n| line.contains(n));
        if let Some(at) = self.pending.iter().position(matches) {
            return self.pending.remove(at);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(line) => self.pending.push(line),
                Err(_) => panic!(
                    "no line with {needles:?} from `logs -f` within {WAIT:?}; saw:\n{}",
                    self.pending.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` and waits for a clean exit; how long it took.
    fn stop(&mut self, signal: Signal) -> Duration {
        let sent = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "`logs -f` ended by {signal:?}: {status:?}");
                return sent.elapsed();
            }
            assert!(sent.elapsed() < Duration::from_secs(5), "`logs -f` outlived {signal:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_prints_the_last_lines_of_a_log_and_names_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("servers.toml"),
        format!("[supervisor]\nlog_dir = \"var/log\"\n{}", server("twisted", "tcp")),
    )
    .unwrap();
    let logs_dir = dir.path().join("var/log");
    std::fs::create_dir_all(&logs_dir).unwrap();
    std::fs::write(logs_dir.join("supervisor.log"), numbered(1..21)).unwrap();
    // A rotation happened: the live name leads to today's file, yesterday's is dated.
    std::fs::write(logs_dir.join("twisted.log.2000-01-01"), "a1\na2\na3\n").unwrap();
    std::fs::write(logs_dir.join("twisted.log.2000-01-02"), "b1\nb2\n").unwrap();
    std::os::unix::fs::symlink(logs_dir.join("twisted.log.2000-01-02"), logs_dir.join("twisted.log")).unwrap();

    assert_eq!(stdout(&logs(dir.path(), &[])), numbered(11..21), "10 by default");
    assert_eq!(stdout(&logs(dir.path(), &["-n", "3"])), numbered(18..21));
    assert_eq!(stdout(&logs(dir.path(), &["twisted", "-n", "4"])), "a2\na3\nb1\nb2\n");
    // From anywhere, with -c.
    let config = dir.path().join("servers.toml");
    let out = logs(Path::new("/"), &["twisted", "-n", "1", "-c", config.to_str().unwrap()]);
    assert_eq!(stdout(&out), "b2\n");

    let out = logs(dir.path(), &["nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no log named `nope`; known: kernel, twisted (or no NAME for the supervisor's)"),
        "{stderr}"
    );
    let out = logs(dir.path(), &["kernel"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing logged yet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends each line with a write of its own, as a logging thread does.
fn write_lines(path: &Path, lines: std::ops::Range<u32>) {
    let mut file = std::fs::File::options().create(true).append(true).open(path).unwrap();
    for i in lines {
        writeln!(file, "line {i}").unwrap();
    }
}

#[test]
fn logs_f_loses_no_line_across_rotations_and_ends_on_sigint_or_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("servers.toml"), server("twisted", "tcp")).unwrap();
    let logs_dir = dir.path().join("logs");
    std::fs::create_dir(&logs_dir).unwrap();
    let day = |name: &str, d: u32| logs_dir.join(format!("{name}.log.2000-01-0{d}"));
    // The supervisor's log as tracing-appender keeps it: dated files, the live name a symlink.
    let supervisor = logs_dir.join("supervisor.log");
    std::fs::write(day("supervisor", 1), "start\n").unwrap();
    std::os::unix::fs::symlink(day("supervisor", 1), &supervisor).unwrap();
    // The kernel's as a renaming rotation (logrotate) keeps it: a plain live file.
    let kernel = logs_dir.join("kernel.log");
    std::fs::write(&kernel, "start\n").unwrap();

    let mut tails = [
        Tail::start(dir.path(), &["-f", "-n", "1"]),
        Tail::start(dir.path(), &["kernel", "-f", "-n", "1"]),
    ];
    for tail in &mut tails {
        assert_eq!(tail.next(), "start");
    }
    // Written as fast as the disk takes them while the followers read, rotating twice.
    const LINES: u32 = 3000;
    for part in 0..3 {
        let lines = part * LINES / 3..(part + 1) * LINES / 3;
        if part > 0 {
            // As the appender rotates: the new file, then the name moved to it.
            std::fs::File::create(day("supervisor", part + 1)).unwrap();
            std::fs::remove_file(&supervisor).unwrap();
            std::os::unix::fs::symlink(day("supervisor", part + 1), &supervisor).unwrap();
            std::fs::rename(&kernel, day("kernel", part)).unwrap();
        }
        write_lines(&supervisor, lines.clone());
        write_lines(&kernel, lines);
    }
    for tail in &mut tails {
        let got: String = (0..LINES).map(|_| tail.next() + "\n").collect();
        assert_eq!(got, numbered(0..LINES), "every line once, in order");
    }
    let int = tails[0].stop(Signal::SIGINT);
    let term = tails[1].stop(Signal::SIGTERM);
    eprintln!(
        "`logs -f` followed {LINES} lines across 2 rotations; ended {int:?} after SIGINT, {term:?} after SIGTERM"
    );
}

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

#[test]
fn a_frontend_log_tells_each_clients_story_and_logs_f_follows_it_across_a_restart() {
    // The drop comes quickly: a client that does not read is let go after a second.
    let config = format!("{}input_rate = 0\nsend_timeout = 1\n", server("twisted", "tcp"));
    let mut up = Up::start(&config);
    let (addr, pid) = up.listening("twisted");
    // Everything so far, then what comes: no line can fall between the two.
    let mut tail = Tail::start(up.dir.path(), &["twisted", "-f", "-n", "100000"]);
    tail.wait_for(&["connected to the kernel"]);

    run(Duration::from_secs(60), async {
        // Login, logout, and the close that follows.
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let a = stream.local_addr().unwrap().to_string();
        let mut alice = Telnet::from_stream(stream);
        alice.login("alice").await;
        alice.send("logout").await;
        assert!(alice.closed().await);
        let peer = format!("peer={a}");
        tail.wait_for(&["client connected", &peer]);
        tail.wait_for(&[": login ", &peer, "name=alice"]);
        tail.wait_for(&[": logout ", &peer, "name=alice"]);
        tail.wait_for(&["client disconnected: closed after a logout", &peer]);

        // Gone while logged in.
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let b = format!("peer={}", stream.local_addr().unwrap());
        let mut bob = Telnet::from_stream(stream);
        bob.login("bob").await;
        drop(bob);
        tail.wait_for(&["client disconnected: closed by the client", &b, "name=bob"]);

        // Dropped: it sends and never reads.
        let mut stream = connect_from("127.0.0.1", addr, Some(4096)).await;
        let c = format!("peer={}", stream.local_addr().unwrap());
        flood(&mut stream, &b"x\r\n".repeat(1000), Duration::from_secs(10)).await;
        let line = tail.wait_for(&["dropped a client: send timeout", &c]);
        assert!(line.contains("WARN"), "{line}");
    });

    // A restart of the frontend: its new process writes on in the same log.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let (_, new_pid) = up.listening("twisted");
    assert_ne!(new_pid, pid);
    tail.wait_for(&["connected to the kernel"]);
    tail.stop(Signal::SIGINT);
}
