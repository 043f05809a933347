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

/// A client that leaves while its frontend is down is logged out once, for everyone.
#[test]
fn a_client_that_leaves_while_its_frontend_is_down_is_logged_out_once() {
    let mut up = Up::start(&config());
    let (twisted, pid) = up.listening("twisted");
    let (tornado, _) = up.listening("tornado");
    run(LIMIT, async {
        let mut a = Telnet::connect(twisted).await;
        let mut c = Telnet::connect(tornado).await;
        a.login("alice").await;
        c.login("carol").await;
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
        let mut a = Telnet::connect(twisted).await;
        let mut c = Telnet::connect(tornado).await;
        a.login("alice").await;
        c.login("carol").await;
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
