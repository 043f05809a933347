//! The kernel process, driven over its real Unix socket by two or more frontend connections that
//! speak the wire protocol directly.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use bytes::BufMut;
use chat_supervisor::wire::{Downstream, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::{Scene, WireFrontend, run};

const LIMIT: Duration = Duration::from_secs(30);
/// A broadcast names no session: it is for every logged-in one of the frontend.
const ALL: u64 = u64::MAX;

/// Frontends `one` and `two`, attached with no session.
async fn two_frontends(socket: &std::path::Path) -> (WireFrontend, WireFrontend) {
    let one = WireFrontend::connect(socket, "one", vec![]).await;
    let two = WireFrontend::connect(socket, "two", vec![]).await;
    (one, two)
}

#[test]
fn chat_across_frontends() {
    let scene = Scene::new();
    let _kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let (mut f1, mut f2) = two_frontends(&socket).await;

        f1.open(1).await;
        f1.line(1, "login alice").await;
        assert_eq!(
            f1.delivery().await,
            (vec![ALL], "[SYSTEM INFO] - [alice] login to chat.".into())
        );

        f2.open(7).await;
        f2.line(7, "login alice").await;
        assert_eq!(
            f2.delivery().await,
            (vec![7], "[ERROR] - Username already taken!".into())
        );
        f2.line(7, "login bob").await;
        assert_eq!(
            f2.delivery().await,
            (vec![ALL], "[SYSTEM INFO] - [bob] login to chat.".into())
        );
        assert_eq!(
            f1.delivery().await,
            (vec![ALL], "[SYSTEM INFO] - [bob] login to chat.".into())
        );

        f2.line(7, "msg alice hi  there").await;
        let (to, text) = f1.delivery().await;
        assert_eq!(to, vec![1]);
        assert!(text.ends_with("][bob][->][alice]: hi  there"), "{text}");
        assert_eq!(f2.delivery().await.1, text);

        f1.login(2, "carol").await;
        f2.delivery().await;
        f2.line(7, "msgall hello all").await;
        // One frame for each frontend, for all of its logged-in users.
        let (to, text) = f1.delivery().await;
        assert_eq!(to, vec![ALL]);
        assert!(text.ends_with("][bob]: hello all"), "{text}");
        assert_eq!(f2.delivery().await.0, vec![ALL]);

        f2.line(7, "userlist").await;
        assert_eq!(f2.delivery().await.1, "[INFO] - ['alice', 'bob', 'carol']");
        f2.line(7, "/userlist").await;
        assert_eq!(f2.delivery().await.1, "['alice', 'bob', 'carol']");
        f1.quiet().await;
    });
}

#[test]
fn a_frontend_saying_goodbye_logs_out_each_of_its_users_once() {
    let scene = Scene::new();
    let _kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let (mut f1, mut f2) = two_frontends(&socket).await;
        f2.login(1, "watcher").await;
        for (session, name) in [(1, "a"), (2, "b")] {
            f1.login(session, name).await;
            f2.delivery().await;
        }
        f1.open(3).await; // never logged in: no broadcast for it
        f1.send(Upstream::Bye).await;
        drop(f1);
        assert_eq!(
            f2.delivery().await,
            (vec![ALL], "[SYSTEM INFO] - [a] logout from chat.".into())
        );
        assert_eq!(
            f2.delivery().await,
            (vec![ALL], "[SYSTEM INFO] - [b] logout from chat.".into())
        );
        f2.line(1, "/userlist").await;
        assert_eq!(f2.delivery().await.1, "['watcher']");
        f2.quiet().await;
    });
}

/// A frontend that says goodbye and exits at once may be gone before the kernel writes to it (its
/// welcome, here): the write fails, and the goodbye still waits unread. It is read first, so the
/// frontend's users are logged out at once, not after the grace. Each round has the kernel take
/// the connection only once the frontend is gone (SIGSTOP); which the kernel meets first, the
/// failed write or the goodbye, is its scheduler's pick, so four rounds.
#[test]
fn a_goodbye_after_which_the_kernels_writes_fail_still_logs_out_at_once() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let scene = Scene::new();
    let kernel = scene.kernel();
    let pid = Pid::from_raw(kernel.pid() as i32);
    run(LIMIT, async {
        let socket = scene.socket();
        let mut watcher = WireFrontend::connect(&socket, "two", vec![]).await;
        watcher.login(1, "watcher").await;
        for round in 0..4u64 {
            let name = format!("a{round}");
            let login = chat_supervisor::chat::Login {
                name: name.clone(),
                seq: 1,
            };
            let mut bytes = bytes::BytesMut::new();
            Upstream::Hello {
                version: chat_supervisor::wire::VERSION,
                frontend: "one".into(),
                instance: round + 1,
                first: 1,
                sessions: vec![(1, Some(login))],
                resume: None,
            }
            .encode(&mut bytes);
            Upstream::Bye.encode(&mut bytes);
            kill(pid, Signal::SIGSTOP).unwrap();
            let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            stream.write_all(&bytes).await.unwrap();
            drop(stream);
            kill(pid, Signal::SIGCONT).unwrap();
            let gone = std::time::Instant::now();
            let logout = format!("[SYSTEM INFO] - [{name}] logout from chat.");
            let seen = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    if watcher.delivery().await.1 == logout {
                        return;
                    }
                }
            })
            .await;
            assert!(
                seen.is_ok(),
                "round {round}: no logout within 2 s of the goodbye ({:?})",
                gone.elapsed()
            );
        }
    });
}

/// A frontend whose connection ends without a goodbye crashed: its next process may adopt its
/// clients, so its users stay logged in for the grace, and are logged out once after it.
#[test]
fn a_frontend_that_vanishes_keeps_its_users_for_the_grace() {
    let scene = Scene::new();
    let _kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let (mut f1, mut f2) = two_frontends(&socket).await;
        f2.login(1, "watcher").await;
        f1.login(1, "a").await;
        f2.delivery().await;
        let vanished = std::time::Instant::now();
        drop(f1);
        f2.quiet().await;
        // Heartbeats meanwhile, or the kernel would let this one go too.
        let logout = loop {
            match tokio::time::timeout(Duration::from_millis(900), f2.delivery()).await {
                Ok(delivery) => break delivery,
                Err(_) => f2.send(Upstream::Heartbeat).await,
            }
        };
        assert_eq!(logout, (vec![ALL], "[SYSTEM INFO] - [a] logout from chat.".into()));
        let waited = vanished.elapsed();
        assert!(waited >= Duration::from_millis(4500), "logged out after {waited:?}");
        f2.quiet().await;
    });
}

#[test]
fn logout_broadcasts_then_closes_the_session() {
    let scene = Scene::new();
    let _kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let (mut f1, mut f2) = two_frontends(&socket).await;
        f1.login(1, "a").await;
        f2.login(1, "b").await;
        f1.delivery().await;
        f1.line(1, "logout").await;
        assert_eq!(f1.delivery().await.1, "[SYSTEM INFO] - [a] logout from chat.");
        assert_eq!(f2.delivery().await.1, "[SYSTEM INFO] - [a] logout from chat.");
        assert_eq!(
            f1.recv().await,
            Some(Downstream::Named {
                session: 1,
                login: None
            })
        );
        assert_eq!(f1.recv().await, Some(Downstream::Close { session: 1 }));
        f1.send(Upstream::Closed { session: 1 }).await;
        f2.line(1, "/userlist").await;
        assert_eq!(f2.delivery().await.1, "['b']");
    });
}

#[test]
fn a_malformed_frame_disconnects_only_that_frontend() {
    let scene = Scene::new();
    let kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let bad = WireFrontend::connect(&socket, "bad", vec![]).await;
        let mut good = WireFrontend::connect(&socket, "good", vec![]).await;
        good.login(1, "g").await;

        let mut stream = bad.into_inner();
        let mut garbage = bytes::BytesMut::new();
        garbage.put_u32(5);
        garbage.put_slice(b"\x7fjunk");
        stream.write_all(&garbage).await.unwrap();
        let mut rest = Vec::new();
        let n = util::within("the kernel to hang up", stream.read_to_end(&mut rest)).await;
        assert!(n.is_ok(), "{n:?}");

        good.line(1, "whoami").await;
        assert_eq!(good.delivery().await.1, "[INFO] - g");
    });
    assert!(kernel.log().contains("malformed frame"), "{}", kernel.log());
}

#[test]
fn an_oversized_frame_or_garbage_hello_is_refused() {
    let scene = Scene::new();
    let kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        // An HTTP request instead of a hello.
        let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        util::within("a refusal", stream.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty());
        // A length of 4 GiB: refused without waiting for (or allocating) the body.
        let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        stream.write_all(&[0xff, 0xff, 0xff, 0xff, 1]).await.unwrap();
        util::within("a refusal", stream.read_to_end(&mut rest)).await.unwrap();
        // The kernel still serves.
        let mut ok = WireFrontend::connect(&socket, "ok", vec![]).await;
        ok.open(1).await;
        ok.line(1, "help").await;
        assert!(ok.delivery().await.1.starts_with("[INFO] - commands:"));
    });
    assert!(kernel.rss_kib() < 64 * 1024, "kernel RSS {} KiB", kernel.rss_kib());
}

#[test]
fn socket_is_private_and_a_live_kernel_is_not_replaced() {
    let scene = Scene::new();
    let kernel = scene.kernel();
    let socket = scene.socket();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);

    let second = scene.kernel_command().output().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already serving"), "{stderr}");
    assert!(socket.exists(), "the live kernel's socket must stay");

    // A dead kernel's socket is stale: the next kernel replaces it.
    kernel.signal(nix::sys::signal::Signal::SIGKILL);
    drop(kernel);
    assert!(socket.exists());
    let _kernel = scene.kernel();
    run(LIMIT, async {
        WireFrontend::connect(&scene.socket(), "after", vec![]).await;
    });
}

#[test]
fn a_directory_open_to_others_is_refused() {
    let scene = Scene::new();
    let run_dir = scene.socket().parent().unwrap().to_path_buf();
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = scene.kernel_command().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("open to other users"), "{stderr}");
}

#[test]
fn a_peer_of_another_uid_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to connect as another uid");
        return;
    }
    let scene = Scene::new();
    let kernel = scene.kernel();
    // Open the way for uid 65534 so that only the credential check stands between it and us.
    let socket = scene.socket();
    for (path, mode) in [
        (scene.dir.path(), 0o711),
        (socket.parent().unwrap(), 0o711),
        (socket.as_path(), 0o666),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let script = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
name = b"intruder"
body = b"\x01CHAT\x00\x01" + struct.pack(">I", len(name)) + name + struct.pack(">QQI", 1, 1, 0)
s.settimeout(10)
try:
    s.sendall(struct.pack(">I", len(body)) + body)
    print(len(s.recv(100)))
except (ConnectionResetError, BrokenPipeError):
    print(0)
"#;
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&socket)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the kernel answered another uid"
    );
    assert!(kernel.log().contains("another user"), "{}", kernel.log());
}

#[test]
fn sigterm_stops_the_kernel_and_removes_its_socket() {
    let scene = Scene::new();
    let mut kernel = scene.kernel();
    kernel.signal(nix::sys::signal::Signal::SIGTERM);
    let status = kernel.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!scene.socket().exists());
}

#[test]
fn frames_are_acknowledged_and_events_carry_their_origin() {
    let scene = Scene::new();
    let _kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let mut f = WireFrontend::connect(&socket, "one", vec![]).await;
        f.open(1).await; // frame 1
        f.line(1, "login a").await; // frame 2
        let mut acked = 0;
        let mut origin = None;
        while acked < 2 {
            match f.recv_any().await.unwrap() {
                Downstream::Ack { seq } => {
                    assert!(seq > acked, "acknowledgements go forward");
                    acked = seq;
                }
                Downstream::Deliver { origin: o, .. } => origin = o,
                _ => {}
            }
        }
        assert_eq!(origin, Some(chat_supervisor::wire::Origin { instance: 1, seq: 2 }));
    });
}

#[test]
fn a_restarted_kernel_restores_sessions_and_waits_for_every_expected_frontend() {
    let scene = Scene::new();
    let mut command = scene.kernel_command();
    command.args(["--expect", "one,two"]);
    let _kernel = scene.spawn_ready("kernel", command);
    run(LIMIT, async {
        let socket = scene.socket();
        let bob = chat_supervisor::chat::Login {
            name: "bob".into(),
            seq: 10,
        };
        // Frontend one comes back with bob logged in and a line it had not seen acknowledged.
        let mut one = WireFrontend::connect(&socket, "one", vec![(1, Some(bob))]).await;
        one.line(1, "msgall still here").await;
        assert!(matches!(one.recv().await, Some(Downstream::Named { session: 1, .. })));
        one.quiet().await; // held: frontend two has not said hello yet
        let mut two = WireFrontend::connect(&socket, "two", vec![(5, None)]).await;
        two.line(5, "login amy").await;
        let (_, text) = one.delivery().await;
        assert!(text.ends_with("[bob]: still here"), "{text}");
        assert_eq!(one.delivery().await.1, "[SYSTEM INFO] - [amy] login to chat.");
        one.line(1, "/userlist").await;
        assert_eq!(one.delivery().await.1, "['bob', 'amy']");
    });
}

#[test]
fn a_deleted_socket_is_re_created() {
    let scene = Scene::new();
    let kernel = scene.kernel();
    run(LIMIT, async {
        let socket = scene.socket();
        let mut before = WireFrontend::connect(&socket, "before", vec![]).await;
        before.login(1, "alice").await;

        std::fs::remove_file(&socket).unwrap();
        let deleted = std::time::Instant::now();
        // Bounded polling: the kernel looks about once a second.
        let mut after = loop {
            if tokio::net::UnixStream::connect(&socket).await.is_ok() {
                break WireFrontend::connect(&socket, "after", vec![]).await;
            }
            assert!(deleted.elapsed() < Duration::from_secs(5), "no socket after 5 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!("the deleted socket was bound again after {:?}", deleted.elapsed());
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // The old connection still serves, and both frontends share one chat.
        after.login(5, "bob").await;
        assert_eq!(before.delivery().await.1, "[SYSTEM INFO] - [bob] login to chat.");
        before.line(1, "/userlist").await;
        assert_eq!(before.delivery().await.1, "['alice', 'bob']");
    });
    let log = kernel.log();
    assert!(
        log.contains("deleted or replaced") && log.contains("kernel.sock"),
        "{log}"
    );
}
