//! The telnet and web frontends as real processes around a real kernel, driven by a raw TCP
//! client and a WebSocket client (tokio-tungstenite).

mod util;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::{self, Message};
use util::{Scene, Telnet, Web, run, within};

const LIMIT: Duration = Duration::from_secs(60);

/// A kernel, one plain telnet frontend and one web frontend.
struct Chat {
    scene: Scene,
    _kernel: util::Proc,
    tcp: util::Proc,
    tcp_addr: std::net::SocketAddr,
    _ws: util::Proc,
    ws_addr: std::net::SocketAddr,
}

fn chat(tcp_args: &[&str]) -> Chat {
    let scene = Scene::new();
    let kernel = scene.kernel();
    let mut args = vec!["--color", "false"];
    args.extend_from_slice(tcp_args);
    let (tcp, tcp_addr) = scene.frontend("twisted", "tcp", &args);
    let (ws, ws_addr) = scene.frontend("web", "ws", &[]);
    Chat {
        scene,
        _kernel: kernel,
        tcp,
        tcp_addr,
        _ws: ws,
        ws_addr,
    }
}

#[test]
fn telnet_and_web_users_chat_across_frontends() {
    let c = chat(&[]);
    run(LIMIT, async {
        let mut alice = Telnet::connect(c.tcp_addr).await;
        let mut bob = Web::connect(c.ws_addr).await;
        alice.login("alice").await;
        bob.send("login bob").await;
        assert_eq!(bob.text().await, "[SYSTEM INFO] - [bob] login to chat.");
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [bob] login to chat.");

        bob.send("msg alice hello from the web").await;
        let line = alice.line().await;
        assert!(line.ends_with("][bob][->][alice]: hello from the web"), "{line}");
        assert_eq!(bob.text().await, line);

        alice.send("msgall hi  everyone").await;
        let line = alice.line().await;
        assert!(line.ends_with("][alice]: hi  everyone"), "{line}");
        assert_eq!(bob.text().await, line);

        bob.send("userlist").await;
        assert_eq!(bob.text().await, "[INFO] - ['alice', 'bob']");
        bob.send("/userlist").await;
        let list = bob.json().await;
        assert_eq!(list, serde_json::json!({"action": "list", "message": ["alice", "bob"]}));
        alice.send("/userlist").await;
        assert_eq!(alice.line().await, "['alice', 'bob']");

        // A trailing newline in a text frame is dropped; a binary frame is no command.
        bob.send("/whoami\r\n").await;
        assert_eq!(bob.text().await, "bob");
        bob.ws.send(Message::binary(b"msgall hi".to_vec())).await.unwrap();
        assert_eq!(bob.text().await, "[ERROR] - unknown command (type help)");

        // Closing the browser tab logs bob out, once.
        bob.ws.close(None).await.unwrap();
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [bob] logout from chat.");
        alice.send("logout").await;
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [alice] logout from chat.");
        assert!(alice.closed().await);
    });
}

#[test]
fn each_telnet_client_is_greeted_first_unless_the_motd_is_empty() {
    let c = chat(&[]);
    let (_colour, colour_addr) = c.scene.frontend("colour", "tcp", &[]);
    let (_custom, custom_addr) = c
        .scene
        .frontend("custom", "tcp", &["--color", "false", "--motd=-- Be kind --"]);
    let (_quiet, quiet_addr) = c.scene.frontend("quiet", "tcp", &["--color", "false", "--motd", ""]);
    run(LIMIT, async {
        // Before it sends anything.
        let mut a = Telnet::connect_greeted(c.tcp_addr).await;
        assert_eq!(
            a.line().await,
            "[INFO] - Welcome to the twisted chat. Type help for the commands."
        );
        a.send("help").await;
        assert!(a.line().await.starts_with("[INFO] - commands: "));

        let mut coloured = Telnet::connect_greeted(colour_addr).await;
        assert_eq!(
            coloured.line().await,
            "\u{1b}[34m[INFO]\u{1b}[0m - Welcome to the colour chat. Type help for the commands."
        );
        let mut custom = Telnet::connect_greeted(custom_addr).await;
        assert_eq!(custom.line().await, "[INFO] - -- Be kind --");

        // No greeting: the first line is the answer to the first command.
        let mut quiet = Telnet::connect_greeted(quiet_addr).await;
        quiet.send("whoami").await;
        assert_eq!(quiet.line().await, "[ERROR] - First login!");
    });
}

#[test]
fn each_web_client_is_greeted_right_after_the_upgrade() {
    let c = chat(&[]);
    let (_quiet, quiet_addr) = c.scene.frontend("quiet", "ws", &["--motd", ""]);
    run(LIMIT, async {
        let mut w = Web::connect_greeted(c.ws_addr).await;
        assert_eq!(
            w.json().await,
            serde_json::json!({
                "action": "response",
                "message": "<span class=\"c-blue\">[INFO]</span> - Welcome to the web chat. Type help for the commands.",
                "text": "[INFO] - Welcome to the web chat. Type help for the commands.",
            })
        );
        // On the wire: the 101 response, then at once the greeting's frame.
        let mut raw = tokio::net::TcpStream::connect(c.ws_addr).await.unwrap();
        let head = util::ws_handshake(&mut raw, &c.ws_addr.to_string()).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(
            util::ws_greeting(&mut raw).await,
            "[INFO] - Welcome to the web chat. Type help for the commands."
        );

        let mut quiet = Web::connect_greeted(quiet_addr).await;
        quiet.send("whoami").await;
        assert_eq!(quiet.text().await, "[ERROR] - First login!");
    });
}

#[test]
fn the_motd_of_servers_toml_reaches_the_clients_and_a_bad_one_is_refused() {
    let config = format!(
        "{}motd = \"- Be kind. ☃\"\n{}motd = \"\"\n",
        util::server("twisted", "tcp"),
        util::server("web", "ws")
    );
    let mut up = util::Up::start(&config);
    let (tcp, _) = up.listening("twisted");
    let (ws, _) = up.listening("web");
    run(LIMIT, async {
        let mut t = Telnet::connect_greeted(tcp).await;
        assert_eq!(t.line().await, "[INFO] - - Be kind. ☃");
        let mut w = Web::connect_greeted(ws).await;
        w.send("help").await;
        assert!(w.text().await.starts_with("[INFO] - commands: "));
    });
    let check = up.cli(&["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("      motd: - Be kind. ☃\n"), "{stdout}");
    assert!(stdout.contains("      motd: none (motd = \"\")\n"), "{stdout}");

    // `serve` refuses a greeting that is not one plain line, as the config does.
    let out = std::process::Command::new(util::bin())
        .args([
            "serve",
            "--name",
            "x",
            "--kind",
            "tcp",
            "--kernel",
            "/nonexistent",
            "--motd",
        ])
        .arg("two\nlines")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must be one line"), "{stderr}");
}

#[test]
fn commands_work_in_any_case_and_an_unknown_one_points_at_help() {
    let c = chat(&[]);
    run(LIMIT, async {
        let mut alice = Telnet::connect(c.tcp_addr).await;
        let mut bob = Web::connect(c.ws_addr).await;
        alice.send("hello").await;
        assert_eq!(alice.line().await, "[ERROR] - unknown command (type help)");
        bob.send("hello").await;
        let json = bob.json().await;
        assert_eq!(json["text"], "[ERROR] - unknown command (type help)");
        assert_eq!(
            json["message"],
            "<span class=\"c-red\">[ERROR]</span> - unknown command (type help)"
        );

        alice.send("LOGIN Alice").await;
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [Alice] login to chat.");
        bob.send("Login bob").await;
        bob.until("[SYSTEM INFO] - [bob] login to chat.").await;
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [bob] login to chat.");
        bob.send("/WHOAMI").await;
        assert_eq!(bob.text().await, "bob");
        bob.send("/UserList").await;
        assert_eq!(bob.json().await["message"], serde_json::json!(["Alice", "bob"]));
        bob.send("Msg ALICE Hi There").await;
        let line = alice.line().await;
        assert!(line.ends_with("][bob][->][Alice]: Hi There"), "{line}");
        alice.send("MSGALL Yo").await;
        assert!(alice.line().await.ends_with("][Alice]: Yo"));
        alice.send("LOGOUT").await;
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [Alice] logout from chat.");
        assert!(alice.closed().await);
    });
}

#[test]
fn telnet_negotiation_is_answered_and_never_reaches_the_chat() {
    let c = chat(&[]);
    run(LIMIT, async {
        let mut a = Telnet::connect(c.tcp_addr).await;
        let mut b = Web::connect(c.ws_addr).await;
        b.login("b").await;
        // DO ECHO, WILL NAWS with its subnegotiation, inside the command line itself.
        a.send_bytes(b"\xff\xfd\x01\xff\xfb\x1flogin \xff\xfa\x1f\x00\x50\x00\x18\xff\xf0a\r\n")
            .await;
        b.until("[SYSTEM INFO] - [a] login to chat.").await;
        let answers = a.raw_line().await.unwrap();
        assert!(answers.starts_with(b"\xff\xfc\x01\xff\xfe\x1f"), "{answers:?}");
        assert!(
            answers.ends_with(b"[SYSTEM INFO] - [a] login to chat.\r\n"),
            "{answers:?}"
        );
        a.send_bytes(b"msgall x\xff\xf1y\r\n").await;
        let line = b.text().await;
        assert!(line.ends_with("][a]: xy"), "{line}");
    });
}

#[test]
fn user_markup_arrives_escaped_and_escape_sequences_stripped() {
    let c = chat(&[]);
    run(LIMIT, async {
        let mut a = Telnet::connect(c.tcp_addr).await;
        let mut b = Web::connect(c.ws_addr).await;
        a.login("a").await;
        b.login("b").await;
        a.line().await;

        a.send("msgall <script>alert('x')</script> & <b>").await;
        let json = b.json().await;
        let html = json["message"].as_str().unwrap();
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;"),
            "{html}"
        );
        assert!(
            json["text"]
                .as_str()
                .unwrap()
                .ends_with("<script>alert('x')</script> & <b>")
        );
        a.line().await;

        b.send("msgall \u{1b}[2J\u{1b}[31mred\u{7}\u{9b}1m").await;
        let line = a.line().await;
        assert!(line.ends_with("][b]: [2J[31mred1m"), "{line:?}");
        assert!(!line.contains('\u{1b}'));
    });
}

#[test]
fn a_megabyte_without_newline_is_refused_without_growing_memory() {
    let c = chat(&[]);
    run(LIMIT, async {
        let mut a = Telnet::connect(c.tcp_addr).await;
        a.login("a").await;
        let before = c.tcp.rss_kib();
        let mib = vec![b'x'; 1 << 20];
        a.send_bytes(&mib).await;
        assert_eq!(a.line().await, "[ERROR] - line too long");
        // Seven more, still without a newline: the frontend holds none of it.
        for _ in 0..7 {
            a.send_bytes(&mib).await;
        }
        a.send("").await; // ends the long line
        a.send("/whoami").await;
        assert_eq!(a.line().await, "a");
        let after = c.tcp.rss_kib();
        assert!(
            after < before + 1024,
            "frontend RSS grew from {before} to {after} KiB over 8 MiB of one line"
        );

        let mut w = Web::connect(c.ws_addr).await;
        w.send(&"y".repeat(5000)).await;
        assert_eq!(w.text().await, "[ERROR] - line too long");
        // Far past the cap, the WebSocket itself is closed: the server may hang up (a reset)
        // while the message is still being sent.
        let end = match w.ws.send(Message::text("z".repeat(1 << 20))).await {
            Err(e) => Some(Err(e)),
            Ok(()) => within("the oversized message to end the connection", w.ws.next()).await,
        };
        assert!(
            matches!(end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
            "{end:?}"
        );
    });
}

#[test]
fn a_client_that_never_reads_does_not_delay_the_others() {
    // The writer sends as fast as it can: throttling off.
    let c = chat(&["--input-rate", "0"]);
    run(LIMIT, async {
        // The sluggard logs in, then never reads again, with a tiny receive buffer.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(c.tcp_addr).await.unwrap();
        let (_sluggard_read, mut sluggard) = stream.into_split();
        sluggard.write_all(b"login sluggard\r\n").await.unwrap();

        let mut reader = Web::connect(c.ws_addr).await;
        reader.login("reader").await;
        let text = "x".repeat(2000);
        let count = 8000;
        // The writer reads its own copies as they come, as a client would.
        let (mut writer_read, mut writer) = tokio::net::TcpStream::connect(c.tcp_addr).await.unwrap().into_split();
        let drain = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut sink = vec![0u8; 1 << 16];
            while writer_read.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        writer.write_all(b"login writer\r\n").await.unwrap();
        // Paced in batches, as many users typing would be: each batch must reach the reader
        // while the sluggard's queue fills and it is dropped.
        let mut sluggard_gone = false;
        let mut slowest = Duration::ZERO;
        for batch in 0..count / 100 {
            let started = std::time::Instant::now();
            let mut lines = String::new();
            for i in batch * 100..(batch + 1) * 100 {
                lines.push_str(&format!("msgall {i} {text}\r\n"));
            }
            writer.write_all(lines.as_bytes()).await.unwrap();
            let mut seen = batch * 100;
            while seen < (batch + 1) * 100 {
                let line = reader.text().await;
                if line == "[SYSTEM INFO] - [sluggard] logout from chat." {
                    sluggard_gone = true;
                } else if line.contains("][writer]: ") {
                    assert!(line.contains(&format!("]: {seen} ")), "out of order: {}", &line[..40]);
                    seen += 1;
                }
            }
            slowest = slowest.max(started.elapsed());
        }
        assert!(sluggard_gone, "the client that never reads was not dropped");
        eprintln!("slowest batch of 100 x 2 KB with a stalled client: {slowest:?}");
        drain.abort();
        assert!(c.tcp.log().contains("not reading"), "{}", c.tcp.log());
    });
}

#[test]
fn max_connections_answers_server_full() {
    let c = chat(&["--max-connections", "2"]);
    run(LIMIT, async {
        let mut a = Telnet::connect(c.tcp_addr).await;
        let mut b = Telnet::connect(c.tcp_addr).await;
        a.login("a").await;
        b.login("b").await;
        let mut third = Telnet::connect(c.tcp_addr).await;
        assert_eq!(third.line().await, "[ERROR] - server full");
        assert!(third.closed().await);
        drop(a);
        assert_eq!(b.line().await, "[SYSTEM INFO] - [a] logout from chat.");
        let mut fourth = Telnet::connect(c.tcp_addr).await;
        fourth.login("d").await;
    });
}

#[test]
fn the_page_is_served_and_cross_origin_upgrades_refused() {
    let c = chat(&[]);
    run(LIMIT, async {
        let page = http_get(c.ws_addr, "/").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        let lower = page.to_ascii_lowercase();
        assert!(lower.contains("content-security-policy: default-src 'none'"), "{page}");
        assert!(page.contains("<script src=\"/app.js\""), "{page}");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "the page names another host"
        );
        assert!(http_get(c.ws_addr, "/app.js").await.starts_with("HTTP/1.1 200"));
        assert!(http_get(c.ws_addr, "/app.css").await.starts_with("HTTP/1.1 200"));

        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", c.ws_addr)).unwrap();
        request
            .headers_mut()
            .insert("Origin", "http://evil.example".parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            other => panic!("cross-origin upgrade was not refused: {other:?}"),
        }
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", c.ws_addr)).unwrap();
        request
            .headers_mut()
            .insert("Origin", format!("http://{}", c.ws_addr).parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        ws.send(Message::text("help")).await.unwrap();
        assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
    });
    let _ = &c.scene;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within("an HTTP response", stream.read_to_string(&mut response))
        .await
        .unwrap();
    response
}

/// A frontend under plain systemd socket activation (`LISTEN_FDS=1` and `LISTEN_PID` set to its
/// own pid, which only an exec'ing parent can do), by systemd's own test tool if installed.
#[test]
fn a_frontend_runs_under_systemd_socket_activation() {
    let activate = std::path::Path::new("/usr/bin/systemd-socket-activate");
    if !activate.exists() {
        eprintln!("skipped: no systemd-socket-activate (Debian package `systemd`)");
        return;
    }
    let scene = Scene::new();
    let _kernel = scene.kernel();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ready = util::Ready::new(scene.dir.path(), "activated");
    let mut command = std::process::Command::new(activate);
    command
        .args(["-l", &format!("127.0.0.1:{port}")])
        // It passes on only the environment it is told to.
        .arg("-E")
        .arg(format!("NOTIFY_SOCKET={}", ready.path.display()))
        .args(["-E", "RUST_LOG=info"])
        .arg(util::bin())
        .args([
            "serve",
            "--name",
            "activated",
            "--kind",
            "tcp",
            "--color",
            "false",
            "--kernel",
        ])
        .arg(scene.socket());
    let frontend = scene.spawn("activated", command);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    run(LIMIT, async {
        // Its socket accepts once the tool listens; the first connection makes it exec the
        // frontend, which finds that connection in the backlog.
        let deadline = tokio::time::Instant::now() + util::WAIT;
        let stream = loop {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => break stream,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("systemd-socket-activate never listened: {e}"),
            }
        };
        let mut user = Telnet::from_stream(stream);
        user.login("socket").await;
        user.send("/whoami").await;
        assert_eq!(user.line().await, "socket");
    });
    ready.wait();
    let log = frontend.log();
    assert!(log.contains(&format!("addr=127.0.0.1:{port}")), "{log}");
    assert!(log.contains("listening"), "{log}");
}
