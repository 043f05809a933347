//! `chat-supervisor up` as a real process: listening lines, restarts under connection attempts,
//! signals, orphans, crash loops, live config edits, the lock and the control commands.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use util::{Telnet, Up, Web, gone, run, server};

const LIMIT: Duration = Duration::from_secs(60);

fn kill(pid: u32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

fn two_servers() -> String {
    format!("{}{}", server("twisted", "tcp"), server("web", "ws"))
}

#[test]
fn up_logs_listening_lines_and_the_chat_works_through_them() {
    let mut up = Up::start(&two_servers());
    let kernel = up.wait_for("ready name=kernel");
    let (tcp, tcp_pid) = up.listening("twisted");
    let (ws, _) = up.listening("web");
    assert!(kernel.contains("pid="));
    assert_ne!(tcp.port(), 0);
    let log = std::fs::read_to_string(up.dir.path().join("logs/supervisor.log")).unwrap();
    assert!(
        log.contains(&format!("listening name=twisted kind=tcp addr={tcp} pid={tcp_pid}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("listening name=web kind=ws addr={ws} pid=")),
        "{log}"
    );

    run(LIMIT, async {
        let mut a = Telnet::connect(tcp).await;
        let mut b = Web::connect(ws).await;
        a.login("a").await;
        b.login("b").await;
        b.send("msg a hi").await;
        assert!(a.until("[SYSTEM INFO] - [b] login to chat.").await.is_empty());
        let line = a.line().await;
        assert!(line.contains("[b][->][a]: hi"), "{line}");
        // `status` counts the logged-in users of each server, and all of them on the kernel.
        assert_eq!(up.row("twisted")["users"], 1);
        assert_eq!(up.row("web")["users"], 1);
        assert_eq!(up.row("kernel")["users"], 2);
    });

    let rows = up.status();
    let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kernel", "twisted", "web"]);
    assert!(rows.iter().all(|r| r["state"] == "running"), "{rows:?}");
    assert_eq!(up.row("twisted")["pid"], tcp_pid);
    let table = String::from_utf8(up.cli(&["status"]).stdout).unwrap();
    assert!(table.starts_with("NAME"), "{table}");
    // Each child has its own log with its own lines.
    let frontend_log = std::fs::read_to_string(up.dir.path().join("logs/twisted.log")).unwrap();
    assert!(frontend_log.contains("connected to the kernel"), "{frontend_log}");
}

/// Connects in a loop until `stop`, counting refusals.
fn hammer(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) && n < 100_000 {
            n += 1;
            attempts.fetch_add(1, Ordering::Relaxed);
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

#[test]
fn kill_9_of_a_frontend_refuses_no_connection() {
    let mut up = Up::start(&two_servers());
    for name in ["twisted", "web"] {
        let (addr, pid) = up.listening(name);
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let hammer = hammer(addr, stop.clone(), attempts.clone(), refused.clone());
        kill(pid, Signal::SIGKILL);
        let (again, new_pid) = up.listening(name);
        assert_eq!(again, addr, "same socket, same address");
        assert_ne!(new_pid, pid);
        // A few more attempts against the new process, then stop.
        let before = attempts.load(Ordering::Relaxed);
        while attempts.load(Ordering::Relaxed) < before + 50 {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        hammer.join().unwrap();
        assert_eq!(refused.load(Ordering::Relaxed), 0, "{name}: refused connections");
        eprintln!(
            "{name}: {} attempts across kill -9, 0 refused",
            attempts.load(Ordering::Relaxed)
        );
    }
    // The restart is counted.
    assert_eq!(up.row("twisted")["restarts"], 1);
}

#[test]
fn kill_9_of_the_kernel_restarts_it_and_the_chat_goes_on() {
    let mut up = Up::start(&two_servers());
    let kernel = up.wait_for("ready name=kernel");
    let (tcp, tcp_pid) = up.listening("twisted");
    let (ws, _) = up.listening("web");
    let kernel_pid: u32 = kernel.rsplit("pid=").next().unwrap().trim().parse().unwrap();
    run(LIMIT, async {
        let mut a = Telnet::connect(tcp).await;
        a.login("a").await;
        kill(kernel_pid, Signal::SIGKILL);
        let line = up.wait_for("ready name=kernel");
        assert!(!line.ends_with(&format!("pid={kernel_pid}")), "{line}");
        // The telnet user kept its connection and its name; new users join the same chat.
        a.send("/whoami").await;
        assert_eq!(a.line().await, "a");
        let mut b = Web::connect(ws).await;
        b.login("b").await;
        a.until("[SYSTEM INFO] - [b] login to chat.").await;
        b.send("/userlist").await;
        assert_eq!(b.json().await["message"], serde_json::json!(["a", "b"]));
    });
    // Frontends were not restarted.
    assert_eq!(up.row("twisted")["pid"], tcp_pid);
    assert_eq!(up.row("kernel")["restarts"], 1);
}

#[test]
fn sigterm_stops_everything_cleanly() {
    let mut up = Up::start(&two_servers());
    up.wait_for("ready name=kernel");
    let (_, tcp) = up.listening("twisted");
    let (_, ws) = up.listening("web");
    let kernel = up.row("kernel")["pid"].as_u64().unwrap() as u32;
    kill(up.proc.pid(), Signal::SIGTERM);
    let status = up.proc.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    for pid in [tcp, ws, kernel] {
        assert!(
            gone(pid, Duration::from_millis(100)),
            "pid {pid} outlived the supervisor"
        );
    }
    let log = std::fs::read_to_string(up.dir.path().join("logs/supervisor.log")).unwrap();
    assert!(log.contains("supervisor stopped"), "{log}");
    assert!(!up.dir.path().join("run/kernel.sock").exists());
    assert!(!up.dir.path().join("run/control.sock").exists());
}

#[test]
fn sigkill_of_the_supervisor_leaves_no_child() {
    let mut up = Up::start(&two_servers());
    up.wait_for("ready name=kernel");
    let (addr, tcp) = up.listening("twisted");
    let (_, ws) = up.listening("web");
    let kernel = up.row("kernel")["pid"].as_u64().unwrap() as u32;
    kill(up.proc.pid(), Signal::SIGKILL);
    up.proc.child.wait().unwrap();
    for pid in [tcp, ws, kernel] {
        assert!(
            gone(pid, Duration::from_secs(2)),
            "pid {pid} outlived a killed supervisor"
        );
    }
    assert!(std::net::TcpStream::connect(addr).is_err(), "the port is still held");
}

#[test]
fn a_crash_loop_shows_as_failed_until_restarted() {
    let mut up = Up::start(&two_servers());
    let (addr, mut pid) = up.listening("twisted");
    for _ in 0..4 {
        kill(pid, Signal::SIGKILL);
        pid = up.listening("twisted").1;
    }
    kill(pid, Signal::SIGKILL);
    up.wait_for("FAILED: crash loop");
    let row = up.row("twisted");
    assert_eq!(row["state"], "failed", "{row}");
    assert_eq!(row["pid"], serde_json::Value::Null);
    // Its clients are told at once rather than left waiting.
    let (line, took) = first_line(addr, b"");
    eprintln!("failed telnet server: {line:?} after {took:?}");
    assert_eq!(line, UNAVAILABLE);
    assert!(took < Duration::from_millis(100), "took {took:?}");
    // The rest is untouched; `restart` brings it back at once.
    assert_eq!(up.row("web")["state"], "running");
    let out = up.cli(&["restart", "twisted"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    up.listening("twisted");
    assert_eq!(up.row("twisted")["state"], "running");
}

#[test]
fn a_live_edit_is_applied_as_a_diff() {
    let config = format!(
        "{}{}{}",
        server("keep", "tcp"),
        server("change", "tcp"),
        server("drop", "ws")
    );
    let mut up = Up::start(&config);
    let (keep_addr, keep_pid) = up.listening("keep");
    let (_, change_pid) = up.listening("change");
    let (_, drop_pid) = up.listening("drop");
    run(LIMIT, async {
        let mut user = Telnet::connect(keep_addr).await;
        user.login("stays").await;

        let edited = format!(
            "{}[[server]]\nname = \"change\"\nkind = \"tcp\"\nport = 0\nmax_line = 100\n{}",
            server("keep", "tcp"),
            server("new", "ws")
        );
        up.write_config(&edited);
        up.wait_for("reloaded: 1 added, 1 removed, 1 changed, 1 unchanged");
        let (_, new_change_pid) = up.listening("change");
        up.listening("new");
        assert_ne!(new_change_pid, change_pid);
        assert!(gone(drop_pid, Duration::from_secs(5)));

        // The untouched server kept its process and its user.
        user.send("/whoami").await;
        assert_eq!(user.line().await, "stays");
    });
    let rows = up.status();
    let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kernel", "change", "keep", "new"]);
    assert_eq!(up.row("keep")["pid"], keep_pid);

    // An invalid edit changes nothing.
    up.write_config("[[server]]\nname = \"keep\"\nkind = \"gopher\"\nport = 0\n");
    let line = up.wait_for("reload refused");
    assert!(line.contains("servers.toml:3: server[1].kind"), "{line}");
    assert_eq!(up.status().len(), 4);
    assert_eq!(up.row("keep")["pid"], keep_pid);

    // `reload` says the same through the control socket.
    let out = up.cli(&["reload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing changed"));
}

#[test]
fn a_second_up_is_refused_naming_the_running_pid() {
    let mut up = Up::start(&two_servers());
    up.listening("web");
    let out = up.cli(&["up"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("already running for servers.toml (pid {})", up.proc.pid())),
        "{stderr}"
    );
    // `down` stops it all and exits 0.
    let out = up.cli(&["down"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(up.proc.child.wait().unwrap().success());
}

#[test]
fn stop_and_start_one_server() {
    let mut up = Up::start(&two_servers());
    let (addr, _) = up.listening("twisted");
    up.listening("web");
    assert!(up.cli(&["stop", "twisted"]).status.success());
    assert_eq!(up.row("twisted")["state"], "stopped");
    assert_eq!(first_line(addr, b"").0, UNAVAILABLE);
    assert!(up.cli(&["start", "twisted"]).status.success());
    up.listening("twisted");
    let out = up.cli(&["restart", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server named `nope`"));
}

#[test]
fn an_address_in_use_stops_up_before_any_child_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}[[server]]\nname = \"busy\"\nkind = \"tcp\"\nport = {port}\n",
        server("ok", "tcp")
    );
    let stderr = util::up_refused(dir.path(), &config);
    assert!(
        stderr.contains(&format!("server `busy`: cannot bind 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!dir.path().join("logs/kernel.log").exists(), "a child started");
}

#[test]
fn check_prints_the_plan_or_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("servers.toml");
    std::fs::write(&path, include_str!("../servers.toml")).unwrap();
    let out = std::process::Command::new(util::bin())
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("twisted  tcp on 127.0.0.1:1234"), "{stdout}");

    std::fs::write(
        &path,
        "[[server]]\nname = \"x\"\nkind = \"tcp\"\nport = -1\nbogus = 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(util::bin())
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("servers.toml:4: server[1].port: must be from 0 to 65535"),
        "{stderr}"
    );
    assert!(
        stderr.contains("servers.toml:5: server[1].bogus: unknown key"),
        "{stderr}"
    );
}

#[test]
fn while_the_kernel_is_down_lines_queue_in_order_and_past_the_bound_get_server_busy() {
    // The burst comes at once: throttling off, so that only the bound is tested.
    let config = format!("{}input_rate = 0\n{}", server("twisted", "tcp"), server("web", "ws"));
    let mut up = Up::start(&config);
    let (tcp, _) = up.listening("twisted");
    up.listening("web");
    run(LIMIT, async {
        let mut a = Telnet::connect(tcp).await;
        a.login("a").await;
        assert!(up.cli(&["stop", "kernel"]).status.success());
        // More lines than a client may have on their way; each is numbered so order shows.
        let sent = chat_supervisor::frontend::session::MAX_INFLIGHT as usize + 500;
        let mut burst = String::new();
        for i in 0..sent {
            burst.push_str(&format!("msg a {i}\r\n"));
        }
        a.send_bytes(burst.as_bytes()).await;
        let mut busy = 0;
        // Refusals come at once; the rest waits for the kernel.
        while a_pending(&mut a, &mut busy).await || busy == 0 {}
        eprintln!("{busy} of {sent} lines answered `server busy` while the kernel was down");
        assert!(up.cli(&["start", "kernel"]).status.success());
        let mut expected = 0;
        let mut delivered = 0;
        while delivered + busy < sent {
            let line = a.line().await;
            if line == "[ERROR] - server busy, try again" {
                busy += 1;
                continue;
            }
            let n: usize = line.rsplit(": ").next().unwrap().parse().unwrap();
            assert!(n >= expected, "out of order: {n} after {expected}");
            expected = n + 1;
            delivered += 1;
        }
        assert_eq!(delivered + busy, sent);
        assert_eq!(delivered, chat_supervisor::frontend::session::MAX_INFLIGHT as usize);
        eprintln!("{delivered} queued lines delivered in order after the kernel came back");
    });
}

/// Reads one line while lines are still arriving (counting `server busy`); false after a quiet
/// moment.
async fn a_pending(a: &mut Telnet, busy: &mut usize) -> bool {
    match tokio::time::timeout(Duration::from_millis(500), a.line()).await {
        Ok(line) => {
            assert_eq!(
                line, "[ERROR] - server busy, try again",
                "nothing but refusals while the kernel is down"
            );
            *busy += 1;
            true
        }
        Err(_) => false,
    }
}

/// The pid at the end of a `ready name=kernel … pid=N` or `listening … pid=N` line.
fn pid_in(line: &str) -> u32 {
    line.rsplit("pid=").next().unwrap().trim().parse().unwrap()
}

/// The `WATCHDOG_USEC` a process was started with.
fn watchdog_usec(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"WATCHDOG_USEC="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

const WATCHDOG: Duration = Duration::from_secs(2);

fn watched(servers: &str) -> String {
    format!("[supervisor]\nwatchdog = {}\n{servers}", WATCHDOG.as_secs())
}

#[test]
fn a_sigstopped_kernel_is_replaced_within_the_watchdog() {
    let mut up = Up::start(&watched(&server("twisted", "tcp")));
    let old = pid_in(&up.wait_for("ready name=kernel"));
    let (tcp, _) = up.listening("twisted");
    assert_eq!(watchdog_usec(old).as_deref(), Some("2000000"));
    run(LIMIT, async {
        let mut a = Telnet::connect(tcp).await;
        a.login("a").await;
        kill(old, Signal::SIGSTOP);
        let stopped = std::time::Instant::now();
        let hung = up.wait_for("watchdog: kernel hung");
        assert!(
            hung.contains("watchdog: kernel hung (no WATCHDOG=1 for 2s); killing it"),
            "{hung}"
        );
        let new = pid_in(&up.wait_for("ready name=kernel"));
        let took = stopped.elapsed();
        eprintln!("SIGSTOPped kernel replaced {took:?} after the SIGSTOP (watchdog {WATCHDOG:?})");
        assert_ne!(new, old);
        assert!(took <= WATCHDOG + Duration::from_secs(2), "took {took:?}");
        assert!(gone(old, Duration::from_secs(1)), "the stopped kernel is still there");
        // Still connected; the frontend reconnected and restored the session on its own.
        a.send("/whoami").await;
        assert_eq!(a.line().await, "a");
    });
    assert_eq!(up.row("kernel")["state"], "running");
    assert_eq!(up.row("kernel")["restarts"], 1);
}

#[test]
fn a_sigstopped_frontend_is_replaced_within_the_watchdog() {
    let mut up = Up::start(&watched(&server("twisted", "tcp")));
    up.wait_for("ready name=kernel");
    let (addr, old) = up.listening("twisted");
    assert_eq!(watchdog_usec(old).as_deref(), Some("2000000"));
    kill(old, Signal::SIGSTOP);
    let stopped = std::time::Instant::now();
    let hung = up.wait_for("watchdog: twisted hung");
    assert!(
        hung.contains("watchdog: twisted hung (no WATCHDOG=1 for 2s); killing it"),
        "{hung}"
    );
    let (again, new) = up.listening("twisted");
    let took = stopped.elapsed();
    eprintln!("SIGSTOPped frontend replaced {took:?} after the SIGSTOP (watchdog {WATCHDOG:?})");
    assert_eq!(again, addr);
    assert_ne!(new, old);
    assert!(took <= WATCHDOG + Duration::from_secs(2), "took {took:?}");
    assert!(gone(old, Duration::from_secs(1)), "the stopped frontend is still there");
    run(LIMIT, async {
        let mut b = Telnet::connect(addr).await;
        b.login("b").await;
        b.send("/whoami").await;
        assert_eq!(b.line().await, "b");
    });
    assert_eq!(up.row("twisted")["state"], "running");
}

/// The whole host paused a little past the watchdog (the supervisor with its children, as a
/// SIGSTOP of the machine or of its VM would): on resume nobody is taken for hung. Each deadline
/// is noticed less than a second late, so only the supervisor's own pulse shows the pause.
#[test]
fn a_host_paused_past_the_watchdog_kills_nobody_on_resume() {
    let mut up = Up::start(&watched(&server("twisted", "tcp")));
    up.wait_for("ready name=kernel");
    let (addr, _) = up.listening("twisted");
    let before = up.children().unwrap();
    let supervisor = up.proc.pid();
    run(LIMIT, async {
        let mut a = Telnet::connect(addr).await;
        a.login("a").await;
        kill(supervisor, Signal::SIGSTOP);
        for pid in before.values() {
            kill(*pid, Signal::SIGSTOP);
        }
        // The pause itself, not a wait for something.
        tokio::time::sleep(WATCHDOG + Duration::from_millis(100)).await;
        for pid in before.values() {
            kill(*pid, Signal::SIGCONT);
        }
        kill(supervisor, Signal::SIGCONT);
        a.send("/whoami").await;
        assert_eq!(a.line().await, "a");
    });
    assert_eq!(up.children().unwrap(), before, "a child was replaced");
    let hung: Vec<_> = up.seen().iter().filter(|l| l.contains("hung")).cloned().collect();
    assert!(hung.is_empty(), "{hung:?}");
}

#[test]
fn the_kernel_is_never_marked_failed() {
    let mut up = Up::start(&server("twisted", "tcp"));
    let mut pid = pid_in(&up.wait_for("ready name=kernel"));
    up.listening("twisted");
    let mut last = Duration::ZERO;
    // One more than a frontend may crash before it is parked.
    for _ in 0..=chat_supervisor::supervisor::backoff::LOOP_FAILURES {
        kill(pid, Signal::SIGKILL);
        let killed = std::time::Instant::now();
        let state = up.row("kernel")["state"].clone();
        assert_ne!(state, "failed");
        let again = pid_in(&up.wait_for("ready name=kernel"));
        last = killed.elapsed();
        assert_ne!(again, pid);
        pid = again;
    }
    eprintln!("the last of 6 quick kernel restarts took {last:?}");
    assert!(last <= chat_supervisor::supervisor::backoff::CAP + Duration::from_secs(1));
    let row = up.row("kernel");
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(row["pid"], pid);
    let log = std::fs::read_to_string(up.dir.path().join("logs/supervisor.log")).unwrap();
    assert!(!log.contains("FAILED"), "{log}");
}

#[test]
fn watchdog_0_disables_it() {
    let mut up = Up::start(&format!("[supervisor]\nwatchdog = 0\n{}", server("twisted", "tcp")));
    let kernel = pid_in(&up.wait_for("ready name=kernel"));
    let (addr, pid) = up.listening("twisted");
    assert_eq!(watchdog_usec(kernel), None);
    assert_eq!(watchdog_usec(pid), None);
    // Longer than a watchdog of 2 s would allow; nothing comes to kill it.
    kill(pid, Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(3));
    kill(pid, Signal::SIGCONT);
    let row = up.row("twisted");
    assert_eq!(row["pid"], pid, "{row}");
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(row["restarts"], 0, "{row}");
    run(LIMIT, async {
        let mut b = Telnet::connect(addr).await;
        b.login("b").await;
    });
    let log = std::fs::read_to_string(up.dir.path().join("logs/supervisor.log")).unwrap();
    assert!(!log.contains("watchdog:"), "{log}");
}

const UNAVAILABLE: &str = "[ERROR] - server unavailable, try again later";

/// Connects, sends `request`, and returns the first line the server sends back (without its
/// line ending; empty at EOF) and how long that took from the connect.
fn first_line(addr: std::net::SocketAddr, request: &[u8]) -> (String, Duration) {
    use std::io::{BufRead, Write};
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect_timeout(&addr, util::WAIT).unwrap();
    stream.set_read_timeout(Some(util::WAIT)).unwrap();
    let _ = stream.write_all(request);
    let mut line = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut line);
    (line.trim_end().to_string(), started.elapsed())
}

#[test]
fn a_stopped_server_answers_unavailable_at_once_and_its_process_takes_over_on_start() {
    let mut up = Up::start(&two_servers());
    let (tcp, _) = up.listening("twisted");
    let (ws, _) = up.listening("web");
    for name in ["twisted", "web"] {
        assert!(up.cli(&["stop", name]).status.success());
    }
    let (line, took) = first_line(tcp, b"");
    eprintln!("stopped telnet server: {line:?} after {took:?}");
    assert_eq!(line, UNAVAILABLE);
    assert!(took < Duration::from_millis(100), "took {took:?}");
    let request = format!("GET / HTTP/1.1\r\nHost: {ws}\r\n\r\n");
    let (status, took) = first_line(ws, request.as_bytes());
    eprintln!("stopped web server: {status:?} after {took:?}");
    assert!(status.starts_with("HTTP/1.1 503 "), "{status}");
    assert!(took < Duration::from_millis(100), "took {took:?}");

    // Clients keep coming while it starts again: each is answered by the supervisor or served by
    // the new process, none left without an answer.
    let stop = Arc::new(AtomicBool::new(false));
    let unavailable = Arc::new(AtomicU64::new(0));
    let (stopping, counted) = (stop.clone(), unavailable.clone());
    let clients = std::thread::spawn(move || {
        let (mut served, mut lost) = (0, Vec::new());
        let deadline = std::time::Instant::now() + util::WAIT;
        while !stopping.load(Ordering::Relaxed) || served < 20 {
            assert!(std::time::Instant::now() < deadline, "served {served}, lost {lost:?}");
            match first_line(tcp, b"help\r\n").0 {
                line if line == UNAVAILABLE => _ = counted.fetch_add(1, Ordering::Relaxed),
                // The server's greeting, or its answer to `help`.
                line if line.starts_with("[INFO] - ") => served += 1,
                other => lost.push(other),
            }
        }
        (served, lost)
    });
    let deadline = std::time::Instant::now() + util::WAIT;
    while unavailable.load(Ordering::Relaxed) < 20 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::yield_now();
    }
    assert!(up.cli(&["start", "twisted"]).status.success());
    up.listening("twisted");
    stop.store(true, Ordering::Relaxed);
    let (served, lost) = clients.join().unwrap();
    let unavailable = unavailable.load(Ordering::Relaxed);
    eprintln!(
        "around `start`: {unavailable} answered unavailable, {served} served, {} lost",
        lost.len()
    );
    assert!(lost.is_empty(), "{lost:?}");
    // The web server is still answered for.
    let (status, _) = first_line(ws, request.as_bytes());
    assert!(status.starts_with("HTTP/1.1 503 "), "{status}");
}

#[test]
fn during_a_crash_restart_clients_wait_and_are_served() {
    let mut up = Up::start(&server("twisted", "tcp"));
    let (addr, pid) = up.listening("twisted");
    // The first restart is immediate; the second waits out a backoff.
    kill(pid, Signal::SIGKILL);
    let (_, pid) = up.listening("twisted");
    kill(pid, Signal::SIGKILL);
    let (line, took) = first_line(addr, b"help\r\n");
    eprintln!("a client during a crash-restart was served after {took:?}");
    assert!(line.starts_with("[INFO] - Welcome to the twisted chat."), "{line}");
    up.listening("twisted");
    assert_eq!(up.row("twisted")["restarts"], 2);
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_config_option_goes_before_or_after_the_subcommand() {
    let mut up = Up::start(&two_servers());
    up.listening("web");
    let config = up.dir.path().join("servers.toml");
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(util::bin())
            .args(args)
            .current_dir(elsewhere.path())
            .output()
            .unwrap()
    };
    let before = run(&["-c".as_ref(), config.as_os_str(), "status".as_ref(), "web".as_ref()]);
    let after = run(&[
        "status".as_ref(),
        "web".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    for out in [&before, &after] {
        assert!(out.status.success(), "{}", stderr(out));
        assert!(stdout(out).contains("\nweb "), "{}", stdout(out));
    }
    // Without it, the folder's servers.toml: none here.
    let out = run(&["status".as_ref()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no supervisor is running"), "{}", stderr(&out));
}

#[test]
fn status_of_some_servers_and_its_exit_codes() {
    let mut up = Up::start(&two_servers());
    up.listening("twisted");
    up.listening("web");
    let out = up.cli(&["status", "web", "kernel"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names: Vec<String> = stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["kernel", "web"]);
    // Not a terminal: no colour.
    assert!(!stdout(&out).contains('\x1b'), "{}", stdout(&out));

    assert!(up.cli(&["stop", "twisted"]).status.success());
    // A stopped server shown: 3, as systemctl and LSB scripts say "not running".
    assert_eq!(up.cli(&["status"]).status.code(), Some(3));
    assert_eq!(up.cli(&["status", "twisted"]).status.code(), Some(3));
    assert_eq!(up.cli(&["status", "--json", "twisted"]).status.code(), Some(3));
    // Not shown: 0.
    assert_eq!(up.cli(&["status", "web"]).status.code(), Some(0));
    // An unknown name: 4.
    let out = up.cli(&["status", "web", "nope"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("no server named `nope`"), "{}", stderr(&out));
}

#[test]
fn stop_start_and_restart_take_several_names_or_all() {
    let mut up = Up::start(&format!("{}{}", two_servers(), server("third", "tcp")));
    let (_, twisted) = up.listening("twisted");
    let (_, web) = up.listening("web");
    let (_, third) = up.listening("third");

    let out = up.cli(&["stop", "twisted", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "stopped twisted\nstopped web\n");
    for pid in [twisted, web] {
        assert!(gone(pid, Duration::from_secs(1)));
    }
    assert_eq!(up.row("third")["pid"], third);

    // A stopped server said so, not an error.
    let out = up.cli(&["stop", "twisted"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "twisted is already stopped\n");

    // An unknown name among known ones changes nothing.
    let out = up.cli(&["start", "twisted", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no server named `nope`"), "{}", stderr(&out));
    assert_eq!(up.row("twisted")["state"], "stopped");

    let out = up.cli(&["start", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "third is already running\nstarting twisted\nstarting web\n"
    );
    up.listening("twisted");
    up.listening("web");

    let kernel = up.row("kernel")["pid"].clone();
    let before: Vec<_> = ["third", "twisted", "web"].map(|n| up.row(n)["pid"].clone()).into();
    let out = up.cli(&["restart", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "restarting third\nrestarting twisted\nrestarting web\n");
    for (name, old) in ["third", "twisted", "web"].iter().zip(before) {
        let (_, new) = up.listening(name);
        assert_ne!(serde_json::json!(new), old, "{name}");
    }
    // `all` is the servers: the kernel runs on.
    assert_eq!(up.row("kernel")["pid"], kernel);
    assert_eq!(up.cli(&["status"]).status.code(), Some(0));
}

#[test]
fn completions_are_printed_for_bash() {
    let out = std::process::Command::new(util::bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.contains("chat-supervisor"), "{script}");
    assert!(script.contains("complete"), "{script}");
    assert!(script.contains("restart"), "{script}");
}

#[test]
fn reload_says_what_the_file_watcher_already_applied() {
    let mut up = Up::start(&server("twisted", "tcp"));
    up.listening("twisted");
    let out = up.cli(&["reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("nothing new: servers.toml was applied at "),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).ends_with(" (when `up` started)\n"), "{}", stdout(&out));

    up.write_config(&two_servers());
    up.wait_for("reloaded: 1 added, 0 removed, 0 changed, 1 unchanged");
    up.listening("web");
    let out = up.cli(&["reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    eprintln!("reload after a watcher-applied edit: {said}");
    let time = said
        .strip_prefix("nothing new: servers.toml was applied at ")
        .and_then(|rest| rest.strip_suffix(" (1 added)\n"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").is_ok(), "{said}");
}

#[test]
fn status_flags_an_edit_that_was_refused() {
    let mut up = Up::start(&two_servers());
    up.listening("twisted");
    up.listening("web");
    assert_eq!(up.status_json()["config_error"], serde_json::Value::Null);
    up.write_config("[[server]]\nname = \"twisted\"\nkind = \"gopher\"\nport = 0\n");
    up.wait_for("reload refused");
    let out = up.cli(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let flagged = table.lines().last().unwrap();
    eprintln!("status after a refused edit: {flagged}");
    assert!(
        flagged.starts_with("servers.toml changed since the running config was loaded and is invalid: "),
        "{table}"
    );
    assert!(flagged.contains("servers.toml:3: server[1].kind"), "{flagged}");
    assert!(flagged.ends_with("; running the previous config"), "{flagged}");
    let json = up.status_json();
    assert_eq!(json["config_error"], flagged, "{json}");
    assert_eq!(json["servers"].as_array().unwrap().len(), 3);

    // Fixed (back to what runs): the flag goes.
    up.write_config(&two_servers());
    up.wait_for("nothing new");
    assert_eq!(up.status_json()["config_error"], serde_json::Value::Null);
}

#[test]
fn up_tells_its_notify_socket_when_it_is_ready_and_when_it_stops() {
    let outside = tempfile::tempdir().unwrap();
    let path = outside.path().join("systemd.notify");
    let systemd = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    systemd.set_read_timeout(Some(util::WAIT)).unwrap();
    let next = || {
        let mut buf = [0u8; 256];
        let n = systemd.recv(&mut buf).expect("a notify message in time");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("servers.toml"), two_servers()).unwrap();
    let started = std::time::Instant::now();
    let mut up = Up::start_with_env(dir, &[("NOTIFY_SOCKET", path.as_os_str())]);
    assert_eq!(next(), "READY=1");
    eprintln!("READY=1 {:?} after `up` started", started.elapsed());
    // By then the kernel and every server serve.
    let rows = up.status();
    assert!(rows.iter().all(|r| r["state"] == "running"), "{rows:?}");
    up.wait_for("ready: the kernel and 2 of 2 servers running");

    kill(up.proc.pid(), Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1");
    assert!(up.proc.child.wait().unwrap().success());
}
