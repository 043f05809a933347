//! No frontend's death or restart disconnects a client: the supervisor keeps a copy of every client
//! connection, the next process adopts them, and the kernel keeps the sessions meanwhile. Real
//! `up`, real signals, telnet and WebSocket clients.

mod util;

use std::time::Duration;

use nix::sys::signal::Signal;
use util::{Telnet, Up, Web, run, server};

const LIMIT: Duration = Duration::from_secs(60);

fn kill(pid: u32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

/// Numbered lines carol sends while a process ends (unthrottled, on tornado).
const NUMBERED: usize = 200;

fn config() -> String {
    let tornado = format!("{}input_rate = 0\n", server("tornado", "tcp"));
    format!("{}{}{}", server("twisted", "tcp"), tornado, server("web", "ws"))
}

/// alice on twisted and carol on tornado, both logged in.
async fn alice_and_carol(twisted: std::net::SocketAddr, tornado: std::net::SocketAddr) -> (Telnet, Telnet) {
    let mut a = Telnet::connect(twisted).await;
    let mut c = Telnet::connect(tornado).await;
    a.login("alice").await;
    c.login("carol").await;
    (a, c)
}

/// The numbers of carol's numbered lines among `lines`.
fn numbers(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .filter_map(|l| l.split("[carol]: n").nth(1).and_then(|n| n.parse().ok()))
        .collect()
}

/// How one frontend's process ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    KillNine,
    Restart,
}

/// Clients on `victim` and elsewhere, logged in; `victim`'s process ends while carol sends
/// numbered lines; everyone stays connected and logged in, nobody sees a logout or a login, every
/// numbered line reaches every client exactly once and in order, and the chat works both ways.
fn survives(victim: &str, ending: Ending) {
    let mut up = Up::start(&config());
    let (twisted, old) = up.listening("twisted");
    let (tornado, tornado_pid) = up.listening("tornado");
    let (web, web_pid) = up.listening("web");
    let victim_pid = match victim {
        "twisted" => old,
        "web" => web_pid,
        _ => unreachable!(),
    };
    run(LIMIT, async {
        let mut a = Telnet::connect(twisted).await;
        let mut b = Web::connect(web).await;
        let mut c = Telnet::connect(tornado).await;
        let mut d = Telnet::connect(twisted).await;
        a.login("alice").await;
        b.login("bob").await;
        c.login("carol").await;
        d.login("dave").await;
        // Everyone has seen every login before the process goes.
        c.send("msgall ready").await;
        a.until_has("[carol]: ready").await;
        b.until_has("[carol]: ready").await;
        c.until_has("[carol]: ready").await;
        d.until_has("[carol]: ready").await;

        let sending = tokio::spawn(async move {
            for n in 0..NUMBERED {
                c.send(&format!("msgall n{n}")).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            c
        });
        tokio::time::sleep(Duration::from_millis(60)).await;
        tokio::task::block_in_place(|| match ending {
            Ending::KillNine => kill(victim_pid, Signal::SIGKILL),
            Ending::Restart => {
                let out = up.cli(&["restart", victim]);
                assert!(out.status.success(), "{out:?}");
            }
        });
        let mut c = sending.await.unwrap();
        let (_, new_pid) = tokio::task::block_in_place(|| up.listening(victim));
        assert_ne!(new_pid, victim_pid, "a new process serves {victim}");
        let last = format!("[carol]: n{}", NUMBERED - 1);
        let every: Vec<usize> = (0..NUMBERED).collect();
        for (who, mut seen) in [
            ("alice", a.until_has(&last).await),
            ("bob", b.until_has(&last).await),
            ("carol", c.until_has(&last).await),
            ("dave", d.until_has(&last).await),
        ] {
            seen.push(last.clone());
            assert_eq!(numbers(&seen), every, "{who} across {victim}'s {ending:?}");
            assert!(
                !seen.iter().any(|l| l.contains("logout") || l.contains("login")),
                "{who} saw a logout or login across {victim}'s {ending:?}: {seen:?}"
            );
        }

        // The chat works through the new process, both ways, under the same names.
        c.send("msgall after").await;
        let seen_a = a.until_has("[carol]: after").await;
        let seen_b = b.until_has("[carol]: after").await;
        let seen_d = d.until_has("[carol]: after").await;
        let seen_c = c.until_has("[carol]: after").await;
        for (who, seen) in [
            ("alice", &seen_a),
            ("bob", &seen_b),
            ("carol", &seen_c),
            ("dave", &seen_d),
        ] {
            assert!(
                !seen.iter().any(|l| l.contains("logout") || l.contains("login")),
                "{who} saw a logout or login across {victim}'s {ending:?}: {seen:?}"
            );
        }
        a.send("msg bob from-alice").await;
        b.until_has("[alice][->][bob]: from-alice").await;
        b.send("msgall from-bob").await;
        a.until_has("[bob]: from-bob").await;
        d.until_has("[bob]: from-bob").await;
        c.until_has("[bob]: from-bob").await;
        d.send("userlist").await;
        let list = d.line().await;
        for name in ["alice", "bob", "carol", "dave"] {
            assert!(list.contains(name), "{list}");
        }
        // A name still held: nobody can take it.
        let mut e = Telnet::connect(tornado).await;
        e.send("login alice").await;
        let refused = e.line().await;
        assert!(refused.contains("taken"), "{refused}");
    });
    assert_eq!(up.row("tornado")["pid"], tornado_pid, "the others keep their processes");
    let log = std::fs::read_to_string(up.dir.path().join(format!("logs/{victim}.log"))).unwrap();
    assert!(log.contains("adopted the clients of the previous process"), "{log}");
}

#[test]
fn a_telnet_frontend_killed_with_sigkill_disconnects_nobody() {
    survives("twisted", Ending::KillNine);
}

#[test]
fn a_web_frontend_killed_with_sigkill_disconnects_nobody() {
    survives("web", Ending::KillNine);
}

#[test]
fn restarting_a_telnet_frontend_disconnects_nobody() {
    survives("twisted", Ending::Restart);
}

#[test]
fn restarting_a_web_frontend_disconnects_nobody() {
    survives("web", Ending::Restart);
}

/// A planned restart loses nothing a client had half sent or had waiting: the new process goes
/// on where the old one stopped. On telnet, lines held back by the client's throttle and half a
/// line; on the web, a whole message, a fragment of the next and part of its last frame's header.
#[test]
fn a_restart_takes_over_half_sent_and_throttled_input() {
    use tokio::io::AsyncWriteExt;
    // alice may send 2 lines at once, then 1 a second: her burst waits in the old process.
    let twisted = format!("{}input_rate = 1\ninput_burst = 2\n", server("twisted", "tcp"));
    let tornado = format!("{}input_rate = 0\n", server("tornado", "tcp"));
    let mut up = Up::start(&format!("{twisted}{tornado}{}", server("web", "ws")));
    let (twisted, twisted_pid) = up.listening("twisted");
    let (tornado, _) = up.listening("tornado");
    let (web, web_pid) = up.listening("web");
    run(LIMIT, async {
        let (mut a, mut c) = alice_and_carol(twisted, tornado).await;
        let mut r = tokio::net::TcpStream::connect(web).await.unwrap();
        assert!(util::ws_handshake(&mut r, &web.to_string()).await.contains(" 101 "));
        util::ws_greeting(&mut r).await;
        r.write_all(&util::masked_frame(1, b"login rob")).await.unwrap();
        c.until_has("[rob] login to chat.").await;

        // Telnet: three whole lines (the last two wait for tokens) and half of a fourth.
        a.send_bytes(b"msgall one\r\nmsgall two\r\nmsgall three\r\nmsgall ha")
            .await;
        c.until_has("[alice]: one").await;
        a.until_has("[alice]: one").await;
        tokio::task::block_in_place(|| {
            assert!(up.cli(&["restart", "twisted"]).status.success());
            assert_ne!(up.listening("twisted").1, twisted_pid);
        });
        a.send_bytes(b"lf\r\n").await;
        let seen = c.until_has("[alice]: half").await;
        let said: Vec<&str> = seen.iter().filter_map(|l| l.split("[alice]: ").nth(1)).collect();
        assert_eq!(said, ["two", "three"], "{seen:?}");
        let seen = a.until_has("[alice]: half").await;
        assert!(
            !seen
                .iter()
                .any(|l| l.contains("lost") || l.contains("login") || l.contains("logout")),
            "{seen:?}"
        );

        // Web: a whole message, the first fragment of the next, and 3 bytes of its last frame.
        let mut bytes = util::masked_frame(1, b"msgall w-one");
        bytes.extend(util::masked_fragment(false, 1, b"msgall w-"));
        let last = util::masked_fragment(true, 0, b"half");
        bytes.extend_from_slice(&last[..3]);
        r.write_all(&bytes).await.unwrap();
        c.until_has("[rob]: w-one").await;
        tokio::task::block_in_place(|| {
            assert!(up.cli(&["restart", "web"]).status.success());
            assert_ne!(up.listening("web").1, web_pid);
        });
        r.write_all(&last[3..]).await.unwrap();
        c.until_has("[rob]: w-half").await;
        // rob stays connected and sees it too; nothing he sent was lost.
        loop {
            let (opcode, payload) = util::ws_frame(&mut r).await;
            assert_eq!(opcode, 0x81, "no close frame: {:?}", String::from_utf8_lossy(&payload));
            let text = String::from_utf8_lossy(&payload);
            assert!(!text.contains("lost"), "{text}");
            if text.contains("[rob]: w-half") {
                break;
            }
        }
    });
    for name in ["twisted", "web"] {
        let log = std::fs::read_to_string(up.dir.path().join(format!("logs/{name}.log"))).unwrap();
        assert!(log.contains("taken_over=1"), "{name}: {log}");
    }
}

/// `restart --all` after a new binary is installed over the running one: every child (the kernel
/// first) runs the new binary, and nobody is disconnected, logged out or misses a line.
#[test]
fn restart_all_moves_every_child_to_a_newly_installed_binary() {
    use std::os::unix::fs::MetadataExt;
    let installed = tempfile::tempdir().unwrap();
    let path = installed.path().join("chat-supervisor");
    std::fs::copy(util::bin(), &path).unwrap();
    let mut up = Up::start_bin(&path, &config());
    let (twisted, _) = up.listening("twisted");
    let (tornado, _) = up.listening("tornado");
    let (web, _) = up.listening("web");
    run(LIMIT, async {
        let mut a = Telnet::connect(twisted).await;
        let mut b = Web::connect(web).await;
        let mut c = Telnet::connect(tornado).await;
        a.login("alice").await;
        b.login("bob").await;
        c.login("carol").await;
        c.send("msgall before").await;
        a.until_has("[carol]: before").await;
        b.until_has("[carol]: before").await;

        // A new binary is installed the way package managers do: a new file renamed over the old.
        let new = installed.path().join("chat-supervisor.new");
        std::fs::copy(util::bin(), &new).unwrap();
        std::fs::rename(&new, &path).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let pids = tokio::task::block_in_place(|| {
            let out = up.cli(&["restart", "--all"]);
            assert!(out.status.success(), "{out:?}");
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(said.starts_with("restarting kernel"), "the kernel first: {said}");
            ["twisted", "tornado", "web"].map(|name| up.listening(name).1)
        });
        let kernel = up.row("kernel")["pid"].as_u64().unwrap() as u32;
        for pid in pids.into_iter().chain([kernel]) {
            let exe = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
            assert_eq!(exe.ino(), inode, "pid {pid} runs the new binary");
        }
        for n in 0..20 {
            c.send(&format!("msgall after{n}")).await;
        }
        for (who, seen) in [
            ("alice", a.until_has("[carol]: after19").await),
            ("bob", b.until_has("[carol]: after19").await),
        ] {
            let numbered = seen.iter().filter(|l| l.contains("[carol]: after")).count();
            assert_eq!(numbered, 19, "{who}: {seen:?}");
            assert!(
                !seen
                    .iter()
                    .any(|l| l.contains("logout") || l.contains("login") || l.contains("lost")),
                "{who}: {seen:?}"
            );
        }
    });
}

/// A client that leaves while its frontend is down is logged out once, for everyone.
#[test]
fn a_client_that_leaves_while_its_frontend_is_down_is_logged_out_once() {
    let mut up = Up::start(&config());
    let (twisted, pid) = up.listening("twisted");
    let (tornado, _) = up.listening("tornado");
    run(LIMIT, async {
        let (a, mut c) = alice_and_carol(twisted, tornado).await;
        // Its process stops answering, alice leaves, and it dies.
        kill(pid, Signal::SIGSTOP);
        drop(a);
        kill(pid, Signal::SIGKILL);
        let logout = c.until_has("[alice] logout from chat.").await;
        assert!(logout.is_empty(), "{logout:?}");
        c.send("msgall marker").await;
        let after = c.until_has("[carol]: marker").await;
        assert!(!after.iter().any(|l| l.contains("alice")), "one logout only: {after:?}");
        // The name is free again.
        let mut e = Telnet::connect(tornado).await;
        e.login("alice").await;
    });
}

/// A frontend stopped before the kernel welcomed it still says goodbye: its users are logged out
/// at once, not after the kernel's grace (the kernel is paused so that the stop comes between the
/// new process's hello and the welcome).
#[test]
fn a_frontend_stopped_before_the_kernel_welcomed_it_still_says_goodbye() {
    let mut up = Up::start(&config());
    let (twisted, pid) = up.listening("twisted");
    let (tornado, _) = up.listening("tornado");
    let kernel = up.children().unwrap()["kernel"];
    let log = up.dir.path().join("logs/twisted.log");
    run(LIMIT, async {
        let (_alice, mut c) = alice_and_carol(twisted, tornado).await;
        kill(kernel, Signal::SIGSTOP);
        kill(pid, Signal::SIGKILL);
        let lines = |needle: &'static str| {
            let log = log.clone();
            async move {
                loop {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains(needle) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        util::within("the next process adopting alice", lines("adopted the clients")).await;
        let mut stop = std::process::Command::new(util::bin())
            .args(["stop", "twisted"])
            .current_dir(up.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        util::within("the stop's SIGTERM", lines("SIGTERM: stopping")).await;
        kill(kernel, Signal::SIGCONT);
        let resumed = std::time::Instant::now();
        c.until("[SYSTEM INFO] - [alice] logout from chat.").await;
        let took = resumed.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "logged out {took:?} after the kernel resumed: after the grace, no goodbye"
        );
        assert!(tokio::task::block_in_place(|| stop.wait()).unwrap().success());
    });
}

/// Every way a session ends releases the supervisor's copy: after 1,000 connect/quit cycles its
/// open descriptors are back where they were.
#[test]
fn the_supervisor_keeps_no_copy_of_a_connection_that_ended() {
    let mut up = Up::start(&config());
    let (twisted, _) = up.listening("twisted");
    let (web, _) = up.listening("web");
    let supervisor = up.proc.pid();
    let fds = || std::fs::read_dir(format!("/proc/{supervisor}/fd")).unwrap().count();
    run(LIMIT, async {
        // One logged-in client first, so the frontends have parked something.
        let mut a = Telnet::connect(twisted).await;
        a.login("alice").await;
        let baseline = fds();
        let mut held = Vec::new();
        for i in 0..1000 {
            match i % 4 {
                // Quits with a logout.
                0 => {
                    let mut t = Telnet::connect(twisted).await;
                    t.login(&format!("u{i}")).await;
                    t.send("logout").await;
                    assert!(t.closed().await);
                }
                // Just closes.
                1 => drop(Telnet::connect(twisted).await),
                // A WebSocket that closes.
                2 => {
                    let mut w = Web::connect(web).await;
                    w.login(&format!("w{i}")).await;
                    drop(w);
                }
                // Held open (50 of them, under the 64 allowed from one address): parked while it
                // lasts.
                3 if i % 20 == 3 => held.push(Telnet::connect(twisted).await),
                _ => drop(Telnet::connect(twisted).await),
            }
        }
        // The 50 held ones are parked (each a descriptor); release them and wait for the count
        // to come back.
        let with_held = fds();
        assert!(
            with_held >= baseline + 50,
            "{with_held} descriptors with 50 held, baseline {baseline}"
        );
        drop(held);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = fds();
            if now <= baseline {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{now} descriptors, baseline {baseline}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And the client held throughout is still served.
        a.send("whoami").await;
        a.until_has("alice").await;
    });
}

/// A reload that changes a server in a way its next process can take over (not its kind or
/// address) hands its clients over, as `restart NAME` does.
#[test]
fn a_reload_that_changes_a_server_keeps_its_clients() {
    let mut up = Up::start(&config());
    let (twisted, old) = up.listening("twisted");
    let (tornado, _) = up.listening("tornado");
    run(LIMIT, async {
        let (mut a, mut c) = alice_and_carol(twisted, tornado).await;
        a.until_has("[carol] login to chat.").await;
        let changed = config().replacen("name = \"twisted\"\n", "name = \"twisted\"\ninput_burst = 50\n", 1);
        assert_ne!(changed, config());
        tokio::task::block_in_place(|| {
            up.write_config(&changed);
            up.wait_for("changed: its next process takes its clients over");
        });
        let (_, new) = tokio::task::block_in_place(|| up.listening("twisted"));
        assert_ne!(new, old);
        c.send("msgall after the reload").await;
        let seen = a.until_has("[carol]: after the reload").await;
        assert!(
            !seen.iter().any(|l| l.contains("logout") || l.contains("login")),
            "{seen:?}"
        );
        let seen = c.until_has("[carol]: after the reload").await;
        assert!(seen.is_empty(), "{seen:?}");
        a.send("whoami").await;
        a.until_has("alice").await;
    });
}
