//! Many hosts, one chat: three nodes (three `up`s, each with its own directory, kernel and
//! frontends) on one Redis of the test's own (Debian's redis-server on a Unix socket, nothing on
//! disk). Real processes, real signals, telnet and WebSocket clients.

mod util;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use util::{Telnet, Up, Web, run, server};

const LIMIT: Duration = Duration::from_secs(90);

fn redis() -> chat_harness::Redis {
    chat_harness::Redis::start().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A node: `up` with a telnet and a web server, a member of the cluster on `redis`. `extra` goes
/// into its `[supervisor]` table.
struct Node {
    up: Up,
    tcp: SocketAddr,
    ws: SocketAddr,
}

impl Node {
    fn start(redis: &chat_harness::Redis, name: &str, extra: &str) -> Self {
        let config = format!(
            "[supervisor]\n{extra}\n[cluster]\nredis = \"{}\"\nnode = \"{name}\"\n\n{}input_rate = 0\n{}",
            redis.url(),
            server("t", "tcp"),
            server("w", "ws")
        );
        let mut up = Up::start(&config);
        let (tcp, _) = up.listening("t");
        let (ws, _) = up.listening("w");
        Self { up, tcp, ws }
    }

    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.up.proc.pid()];
        pids.extend(self.up.children().unwrap().into_values());
        pids
    }
}

fn signal(pids: &[u32], signal: Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), signal);
    }
}

/// The names of a `userlist` reply.
async fn userlist(client: &mut Telnet) -> Vec<String> {
    client.send("/userlist").await;
    loop {
        let line = client.line().await;
        if let Some(list) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            return list
                .split(", ")
                .filter(|n| !n.is_empty())
                .map(|n| n.trim_matches('\'').to_string())
                .collect();
        }
    }
}

/// alice on h1; dave and erin on h3 (telnet); once alice has seen them log in.
async fn alice_dave_erin(h1: &Node, h3: &Node) -> (Telnet, Telnet, Telnet) {
    let mut a = Telnet::connect(h1.tcp).await;
    a.login("alice").await;
    let mut d = Telnet::connect(h3.tcp).await;
    let mut e = Telnet::connect(h3.tcp).await;
    d.login("dave").await;
    e.login("erin").await;
    a.until_has("[erin] login to chat.").await;
    (a, d, e)
}

/// Reads lines until both of these have come, in either order; returns every line read.
async fn until_both(client: &mut Telnet, one: &str, other: &str) -> Vec<String> {
    let mut seen = Vec::new();
    while !(seen.iter().any(|l: &String| l.contains(one)) && seen.iter().any(|l| l.contains(other))) {
        seen.push(client.line().await);
    }
    seen
}

/// Waits until `client`'s user list is `expected`, asking every 100 ms.
async fn until_userlist(client: &mut Telnet, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = userlist(client).await;
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "user list {got:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logins, names, `msg`, `msgall` and `userlist` across three nodes, telnet and web; `status`
/// shows every node.
#[test]
fn three_nodes_serve_one_chat() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    let h3 = Node::start(&redis, "h3", "");
    run(LIMIT, async {
        let mut a = Telnet::connect(h1.tcp).await;
        let mut b = Web::connect(h2.ws).await;
        let mut c = Telnet::connect(h3.tcp).await;
        a.login("alice").await;
        b.login("bob").await;
        a.until_has("[bob] login to chat.").await;
        c.login("carol").await;
        a.until_has("[carol] login to chat.").await;
        b.until_has("[carol] login to chat.").await;

        // A name is one user's on every node, up to case and look-alikes.
        for (addr, name) in [(h2.tcp, "ALICE"), (h3.tcp, "аlice"), (h1.tcp, "Bob")] {
            let mut d = Telnet::connect(addr).await;
            d.send(&format!("login {name}")).await;
            assert_eq!(d.line().await, "[ERROR] - Username already taken!", "{name}");
        }

        // The same list, oldest first, everywhere.
        for node in [h1.tcp, h2.tcp, h3.tcp] {
            let mut e = Telnet::connect(node).await;
            e.login(&format!("e{}", node.port())).await;
            let list = userlist(&mut e).await;
            assert_eq!(&list[..3], ["alice", "bob", "carol"], "{node}");
        }

        a.send("msg carol psst").await;
        c.until_has("[alice][->][carol]: psst").await;
        a.until_has("[alice][->][carol]: psst").await;
        b.send("msg ALICE hi from the web").await;
        a.until_has("[bob][->][alice]: hi from the web").await;
        b.send("msgall to everyone").await;
        for seen in [
            a.until_has("[bob]: to everyone").await,
            c.until_has("[bob]: to everyone").await,
        ] {
            assert!(
                !seen.iter().any(|l| l.contains("psst") && l.contains("bob")),
                "{seen:?}"
            );
        }
        tokio::task::block_in_place(|| {
            let status = h1.up.cli(&["status"]);
            let text = String::from_utf8_lossy(&status.stdout);
            assert!(
                text.contains("as node h1: h1 (this host) ") && text.contains("h2 1 users"),
                "{text}"
            );
            let json = h1.up.status_json();
            assert_eq!(json["cluster"]["node"], "h1", "{json}");
            let nodes = json["cluster"]["nodes"].as_array().unwrap().len();
            assert_eq!(nodes, 3, "{json}");
        });
        c.send("msg nobody x").await;
        assert_eq!(c.line().await, "[ERROR] - [nobody] not found!");
        c.send("whoami").await;
        assert_eq!(c.line().await, "[INFO] - carol");

        // A logout is everyone's news; the name is free again at once.
        c.send("logout").await;
        a.until_has("[carol] logout from chat.").await;
        let mut f = Telnet::connect(h1.tcp).await;
        f.login("carol").await;
    });
}

/// Two nodes log in the same name at the same moment, 20 times: exactly one wins each time.
#[test]
fn a_name_raced_for_on_two_nodes_goes_to_one() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    run(LIMIT, async {
        for round in 0..20 {
            let mut x = Telnet::connect(h1.tcp).await;
            let mut y = Telnet::connect(h2.tcp).await;
            let name = format!("race{round}");
            let line = format!("login {name}");
            tokio::join!(x.send(&line), y.send(&line));
            let (rx, ry) = tokio::join!(x.line(), y.line());
            let won = format!("[SYSTEM INFO] - [{name}] login to chat.");
            let lost = "[ERROR] - Username already taken!";
            assert!(
                (rx == won && ry == lost) || (rx == lost && ry == won),
                "round {round}: {rx:?} / {ry:?}"
            );
        }
    });
}

/// 400 numbered `msgall` from one sender reach every client on every other node in order, none
/// missing, none twice, while a receiving node's kernel and then the sender's are killed.
#[test]
fn numbered_lines_cross_nodes_once_and_in_order_through_kernel_kills() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let mut h2 = Node::start(&redis, "h2", "");
    let h3 = Node::start(&redis, "h3", "");
    run(LIMIT, async {
        let mut s = Telnet::connect(h1.tcp).await;
        let mut r2 = Telnet::connect(h2.tcp).await;
        let mut r3 = Web::connect(h3.ws).await;
        let mut r1 = Telnet::connect(h1.tcp).await;
        s.login("sender").await;
        r2.login("r2").await;
        r3.login("r3").await;
        r1.login("r1").await;
        s.until_has("[r1] login to chat.").await;
        r3.until_has("[r1] login to chat.").await;
        r2.until_has("[r1] login to chat.").await;
        let kernel = |node: &Node| node.up.row("kernel")["pid"].as_u64().unwrap() as u32;
        let k2 = kernel(&h2);
        let k1 = kernel(&h1);
        // At most 32 lines unanswered at once: while a kernel restarts, past 64 a line would be
        // refused (`server busy`, PROTOCOL.md), which is no loss but not what this test counts.
        let mut own = Vec::new();
        let echoed = |own: &[String]| own.iter().filter(|l| l.contains("[sender]: n")).count();
        for n in 0..400 {
            while n - echoed(&own) >= 32 {
                own.push(s.line().await);
            }
            s.send(&format!("msgall n{n}")).await;
            if n == 130 {
                signal(&[k2], Signal::SIGKILL);
            }
            if n == 260 {
                signal(&[k1], Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let numbers = |lines: Vec<String>| -> Vec<usize> {
            lines
                .iter()
                .filter_map(|l| l.split("[sender]: n").nth(1).and_then(|n| n.parse().ok()))
                .collect()
        };
        let every: Vec<usize> = (0..400).collect();
        let mut got2 = numbers(r2.until_has("[sender]: n399").await);
        got2.push(399);
        let mut got3 = numbers(r3.until_has("[sender]: n399").await);
        got3.push(399);
        let mut got1 = numbers(r1.until_has("[sender]: n399").await);
        got1.push(399);
        if !own.iter().any(|l| l.contains("[sender]: n399")) {
            own.extend(s.until_has("[sender]: n399").await);
            own.push("[sender]: n399".into());
        }
        let others: Vec<&String> = own.iter().filter(|l| !l.contains("[sender]: n")).collect();
        let gots = numbers(own.clone());
        let gap = |got: &[usize]| -> Vec<usize> { every.iter().filter(|n| !got.contains(n)).copied().collect() };
        assert!(
            got1 == every && got2 == every && got3 == every && gots == every,
            "missing: r1 (h1, kernel killed) {:?}, r2 (h2, kernel killed) {:?}, r3 {:?}, the sender {:?}; in order: {}; the sender's other lines {others:?}",
            gap(&got1),
            gap(&got2),
            gap(&got3),
            gap(&gots),
            [&got1, &got2, &got3, &gots]
                .iter()
                .all(|g| g.windows(2).all(|w| w[0] < w[1]))
        );
    });
    let _ = tokio::task::block_in_place(|| h2.up.wait_for("ready name=kernel"));
}

/// A node killed whole (supervisor and children, SIGKILL): each of its users is logged out once,
/// for everyone, within 10 s, and their names are free again.
#[test]
fn a_node_killed_whole_has_its_users_logged_out_once() {
    let redis = redis();
    let (h1, h3) = (Node::start(&redis, "h1", ""), Node::start(&redis, "h3", ""));
    run(LIMIT, async {
        let (mut a, _d, _e) = alice_dave_erin(&h1, &h3).await;
        let killed = Instant::now();
        signal(&h3.pids(), Signal::SIGKILL);
        let mut seen = until_both(&mut a, "[dave] logout from chat.", "[erin] logout from chat.").await;
        let took = killed.elapsed();
        eprintln!("a whole node killed: its users logged out after {took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        a.send("msgall marker").await;
        seen.extend(a.until_has("[alice]: marker").await);
        for name in ["dave", "erin"] {
            let logouts = seen.iter().filter(|l| l.contains(&format!("[{name}] logout"))).count();
            assert_eq!(logouts, 1, "{name}: {seen:?}");
        }
        let mut again = Telnet::connect(h1.tcp).await;
        again.login("dave").await;
        until_userlist(&mut a, &["alice", "dave"]).await;
    });
}

/// A node paused (SIGSTOP) past its presence is reaped: the others see its users leave, and one
/// takes a name meanwhile. Resumed, it notices, claims its users' names again where still free,
/// and closes the session whose name was taken.
#[test]
fn a_node_paused_past_its_presence_heals() {
    let redis = redis();
    let (h1, h3) = (Node::start(&redis, "h1", ""), Node::start(&redis, "h3", ""));
    run(LIMIT, async {
        let (mut a, mut d, mut e) = alice_dave_erin(&h1, &h3).await;
        let pids = h3.pids();
        signal(&pids, Signal::SIGSTOP);
        let paused = Instant::now();
        until_both(&mut a, "[dave] logout from chat.", "[erin] logout from chat.").await;
        eprintln!("paused node reaped after {:?}", paused.elapsed());
        let mut thief = Telnet::connect(h1.tcp).await;
        thief.login("erin").await;
        signal(&pids, Signal::SIGCONT);
        // dave is back for everyone; erin's old session is told its name went, and closed.
        a.until_has("[dave] login to chat.").await;
        e.until_has("Username already taken!").await;
        assert!(e.closed().await);
        until_userlist(&mut a, &["alice", "erin", "dave"]).await;
        d.send("whoami").await;
        d.until_has("[INFO] - dave").await;
        d.send("msgall back").await;
        a.until_has("[dave]: back").await;
    });
}

/// Redis killed and started again empty: within 10 s the chat works again, every name and the
/// user list are back, names still unique; a line sent meanwhile arrives late, not lost.
#[test]
fn redis_restarted_empty_is_healed() {
    let mut redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    run(LIMIT, async {
        let mut a = Telnet::connect(h1.tcp).await;
        let mut b = Telnet::connect(h2.tcp).await;
        let mut c = Web::connect(h2.ws).await;
        a.login("alice").await;
        b.login("bob").await;
        c.login("carol").await;
        a.until_has("[carol] login to chat.").await;
        b.until_has("[carol] login to chat.").await;
        tokio::task::block_in_place(|| redis.kill());
        a.send("msgall during the outage").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let restarted = Instant::now();
        tokio::task::block_in_place(|| redis.restart_empty().unwrap());
        let seen = b.until_has("[alice]: during the outage").await;
        assert!(
            !seen.iter().any(|l| l.contains("login") || l.contains("logout")),
            "{seen:?}"
        );
        let mut asker = Telnet::connect(h2.tcp).await;
        asker.login("dan").await;
        until_userlist(&mut asker, &["alice", "bob", "carol", "dan"]).await;
        let healed = restarted.elapsed();
        eprintln!("Redis restarted empty: healed after {healed:?}");
        assert!(healed < Duration::from_secs(10), "{healed:?}");
        let mut thief = Telnet::connect(h1.tcp).await;
        thief.send("login bob").await;
        assert_eq!(thief.line().await, "[ERROR] - Username already taken!");
        c.send("msgall after").await;
        a.until_has("[carol]: after").await;
        let names: HashSet<String> = userlist(&mut a).await.into_iter().collect();
        assert_eq!(names.len(), 4);
    });
}

/// `up` with a `[cluster]` whose Redis does not answer stops at once, saying so.
#[test]
fn up_with_an_unreachable_redis_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[cluster]\nredis = \"unix://{}/nothing.sock\"\nnode = \"h1\"\n\n{}",
        dir.path().display(),
        server("t", "tcp")
    );
    let err = util::up_refused(dir.path(), &config);
    assert!(err.contains("does not answer") && err.contains("nothing.sock"), "{err}");
}

/// Reads what `client` is sent for `time` (however many lines that is).
async fn lines_for(client: &mut Telnet, time: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + time;
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, client.raw_line()).await {
        seen.push(String::from_utf8_lossy(&line).trim_end().to_string());
    }
    seen
}

/// How many times each `[from]: text` line came, for the duplicates among `lines`.
fn twice(lines: &[String], from: &str) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::new();
    for text in lines.iter().filter_map(|l| l.split(&format!("[{from}]: ")).nth(1)) {
        *counts.entry(text.to_string()).or_insert(0) += 1;
    }
    counts.into_iter().filter(|(_, n)| *n > 1).map(|(t, _)| t).collect()
}

/// Answers come in each session's order, whatever other sessions of the frontend are answered
/// meanwhile (the frontends drop what looks like a replay); `logout` before a login is refused
/// and changes nothing.
#[test]
fn every_session_gets_its_answers_however_others_are_answered() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    run(LIMIT, async {
        let mut a = Telnet::connect(h1.tcp).await;
        let mut b = Telnet::connect(h1.tcp).await;
        b.send("logout").await;
        assert_eq!(b.line().await, "[ERROR] - First login!");
        a.login("alice").await;
        b.login("bob").await;
        for i in 0..20 {
            // bob's refusal waits for Redis; alice's answer, made here, goes first.
            b.send(&format!("msg nobody{i} x")).await;
            a.send("whoami").await;
            a.until("[INFO] - alice").await;
            b.until(&format!("[ERROR] - [nobody{i}] not found!")).await;
        }
    });
}

/// Lines sent while Redis comes back empty reach the other node once each, in order, although it
/// notices the new epoch later than the sender's node.
#[test]
fn lines_sent_as_redis_comes_back_empty_arrive_once() {
    let mut redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    run(LIMIT, async {
        let mut a = Telnet::connect(h1.tcp).await;
        let mut b = Telnet::connect(h2.tcp).await;
        a.login("alice").await;
        b.login("bob").await;
        a.until_has("[bob] login to chat.").await;
        tokio::task::block_in_place(|| redis.kill());
        b.send("msgall m-outage").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::block_in_place(|| redis.restart_empty().unwrap());
        for i in 0..40 {
            b.send(&format!("msgall m{i}")).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        b.send("msgall end").await;
        let mut seen = a.until_has("[bob]: end").await;
        seen.extend(lines_for(&mut a, Duration::from_secs(2)).await);
        assert!(
            twice(&seen, "bob").is_empty(),
            "twice: {:?} in {seen:?}",
            twice(&seen, "bob")
        );
        let got: Vec<&str> = seen.iter().filter_map(|l| l.split("[bob]: m").nth(1)).collect();
        let expected: Vec<String> = std::iter::once("-outage".to_string())
            .chain((0..40).map(|i| i.to_string()))
            .collect();
        assert_eq!(got, expected, "{seen:?}");
    });
}

/// Redis stopped (SIGSTOP) past every presence's life: once it goes on, nobody is reaped.
#[test]
fn a_redis_that_stood_still_reaps_nobody() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    run(LIMIT, async {
        let mut a = Telnet::connect(h1.tcp).await;
        let mut b = Telnet::connect(h2.tcp).await;
        a.login("alice").await;
        b.login("bob").await;
        a.until_has("[bob] login to chat.").await;
        // Joined a presence's life ago: the nodes may reap.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let pid = [redis.pid().unwrap()];
        signal(&pid, Signal::SIGSTOP);
        tokio::time::sleep(Duration::from_secs(7)).await;
        signal(&pid, Signal::SIGCONT);
        // Both nodes' heartbeats run a few times, then a marker line.
        tokio::time::sleep(Duration::from_secs(3)).await;
        b.send("msgall marker").await;
        let seen = a.until_has("[bob]: marker").await;
        assert!(
            !seen.iter().any(|l| l.contains("logout") || l.contains("login")),
            "{seen:?}"
        );
        until_userlist(&mut a, &["alice", "bob"]).await;
    });
}

/// A `logout` that the kernel ran but whose effect had not reached its frontend when the kernel
/// was killed stays a logout: the next kernel closes the session, and logs nobody in again.
#[test]
fn a_logout_just_before_a_kernel_kill_stays_a_logout() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    run(LIMIT, async {
        let mut w = Telnet::connect(h2.tcp).await;
        w.login("watcher").await;
        let mut c = Telnet::connect(h1.tcp).await;
        c.login("leaver").await;
        w.until_has("[leaver] login to chat.").await;
        let kernel = h1.up.row("kernel")["pid"].as_u64().unwrap() as u32;
        c.send("logout").await;
        signal(&[kernel], Signal::SIGKILL);
        assert!(tokio::time::timeout(Duration::from_secs(10), c.closed()).await.unwrap());
        w.until_has("[leaver] logout from chat.").await;
        let mut again = Telnet::connect(h1.tcp).await;
        again.login("leaver").await;
        let seen = w.until_has("[leaver] login to chat.").await;
        assert!(seen.is_empty(), "{seen:?}");
    });
}

/// A node whose kernel stood still past its presence (reaped), then was killed: the frames its
/// frontend sends again to the next kernel are applied once, not a second time.
#[test]
fn frames_sent_again_after_a_node_was_reaped_apply_once() {
    let redis = redis();
    let h1 = Node::start(&redis, "h1", "");
    let h2 = Node::start(&redis, "h2", "");
    run(LIMIT, async {
        let mut w = Telnet::connect(h2.tcp).await;
        w.login("watcher").await;
        let mut s = Telnet::connect(h1.tcp).await;
        s.login("sender").await;
        w.until_has("[sender] login to chat.").await;
        // Joined a presence's life ago: h2 may reap.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let kernel = h1.up.row("kernel")["pid"].as_u64().unwrap() as u32;
        let supervisor = h1.up.proc.pid();
        let burst: String = (0..200).map(|i| format!("msgall b{i}\r\n")).collect();
        s.send_bytes(burst.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        signal(&[supervisor, kernel], Signal::SIGSTOP);
        w.until_has("[sender] logout from chat.").await;
        signal(&[kernel], Signal::SIGKILL);
        signal(&[supervisor], Signal::SIGCONT);
        // The sender comes back (its node claims its name again), and says so.
        w.until_has("[sender] login to chat.").await;
        s.send("msgall after").await;
        let mut seen = w.until_has("[sender]: after").await;
        seen.extend(lines_for(&mut w, Duration::from_secs(1)).await);
        assert!(twice(&seen, "sender").is_empty(), "twice: {:?}", twice(&seen, "sender"));
    });
}
