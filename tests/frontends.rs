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
        assert_eq!(bob.text().await, "[ERROR] - unknown command");

        // Closing the browser tab logs bob out, once.
        bob.ws.close(None).await.unwrap();
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [bob] logout from chat.");
        alice.send("logout").await;
        assert_eq!(alice.line().await, "[SYSTEM INFO] - [alice] logout from chat.");
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
