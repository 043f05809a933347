//! Shared harness for the integration tests: real processes of the real binary (killed on drop),
//! readiness by `NOTIFY_SOCKET`, `chat-supervisor up` through `chat-harness` (which the benchmark
//! shares), and small clients for each protocol. Every wait is bounded.

#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

pub use chat_harness::{Proc, rss_kib};
use chat_supervisor::chat::{Event, Login, SessionId};
use chat_supervisor::wire::{self, Downstream, Upstream};

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chat-supervisor")
}

/// Runs an async test body on its own runtime, bounded in time.
pub fn run<F: std::future::Future<Output = ()>>(limit: Duration, body: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(limit, body).await.expect("test timed out");
    });
}

/// Waits for `future`, failing the test after [`WAIT`].
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A `NOTIFY_SOCKET` for one child: `READY=1` arrives here when it is ready.
pub struct Ready {
    socket: UnixDatagram,
    pub path: PathBuf,
}

impl Ready {
    pub fn new(dir: &Path, name: &str) -> Self {
        let path = dir.join(format!("{name}.notify"));
        let _ = std::fs::remove_file(&path); // a previous child of the same name
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        Self { socket, path }
    }

    pub fn wait(&self) {
        let mut buf = [0u8; 64];
        let n = self.socket.recv(&mut buf).expect("child reported readiness in time");
        assert_eq!(&buf[..n], b"READY=1");
    }
}

/// A temporary directory holding the kernel socket and the children's logs.
pub struct Scene {
    pub dir: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/kernel.sock")
    }

    /// Spawns the binary with `args`, stderr to `NAME.log`, and waits for it to be ready.
    pub fn spawn_ready(&self, name: &str, mut command: Command) -> Proc {
        let ready = Ready::new(self.dir.path(), name);
        command.env("NOTIFY_SOCKET", &ready.path);
        let proc = self.spawn(name, command);
        ready.wait();
        proc
    }

    pub fn spawn(&self, name: &str, mut command: Command) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        command.env("RUST_LOG", "info");
        Proc {
            child: command.spawn().unwrap(),
            log,
        }
    }

    pub fn kernel_command(&self) -> Command {
        let mut command = Command::new(bin());
        command.arg("kernel").arg("--socket").arg(self.socket());
        command
    }

    pub fn kernel(&self) -> Proc {
        self.spawn_ready("kernel", self.kernel_command())
    }

    /// A frontend of `kind` on an ephemeral loopback port that the test binds and hands over as
    /// fd 3, the way the supervisor does.
    pub fn frontend(&self, name: &str, kind: &str, extra: &[&str]) -> (Proc, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut command = Command::new(bin());
        command
            .args(["serve", "--name", name, "--kind", kind, "--kernel"])
            .arg(self.socket())
            .args(extra);
        chat_supervisor::frontend::listen::pass_listener(&mut command, &listener, name).unwrap();
        let proc = self.spawn_ready(name, command);
        (proc, addr)
    }
}

/// A raw frontend speaking the wire protocol to the kernel, for kernel tests.
pub struct WireFrontend {
    framed: Framed<UnixStream, LengthDelimitedCodec>,
}

impl WireFrontend {
    pub async fn connect(socket: &Path, name: &str, sessions: Vec<(SessionId, Option<Login>)>) -> Self {
        let stream = UnixStream::connect(socket).await.unwrap();
        let mut me = Self {
            framed: Framed::new(stream, wire::codec()),
        };
        me.send(Upstream::Hello {
            version: wire::VERSION,
            frontend: name.into(),
            instance: 1,
            first: 1,
            sessions,
            resume: None,
        })
        .await;
        assert_eq!(me.recv().await, Some(Downstream::Welcome { version: wire::VERSION }));
        me
    }

    pub async fn send(&mut self, message: Upstream) {
        let mut buf = BytesMut::new();
        message.encode(&mut buf);
        // The codec adds its own length: strip ours.
        self.framed.send(buf.split_off(4).freeze()).await.unwrap();
    }

    pub async fn open(&mut self, session: SessionId) {
        self.send(Upstream::Open { session }).await;
    }

    pub async fn line(&mut self, session: SessionId, line: &str) {
        self.send(Upstream::Line {
            session,
            line: line.into(),
        })
        .await;
    }

    /// Opens `session` and logs it in as `name`; returns the login broadcast's text.
    pub async fn login(&mut self, session: SessionId, name: &str) -> String {
        self.open(session).await;
        self.line(session, &format!("login {name}")).await;
        self.delivery().await.1
    }

    /// The next frame other than an acknowledgement or a heartbeat, or None when the kernel
    /// closed the connection.
    pub async fn recv(&mut self) -> Option<Downstream> {
        loop {
            match self.recv_any().await? {
                Downstream::Ack { .. } | Downstream::Heartbeat | Downstream::Sync { .. } => continue,
                other => return Some(other),
            }
        }
    }

    /// The next frame, acknowledgements included.
    pub async fn recv_any(&mut self) -> Option<Downstream> {
        let frame = within("a kernel frame", self.framed.next()).await?;
        Some(Downstream::decode(&frame.ok()?).unwrap())
    }

    /// The next delivery, skipping `Named` frames: recipients (`[u64::MAX]` for every logged-in
    /// session) and plain text.
    pub async fn delivery(&mut self) -> (Vec<SessionId>, String) {
        loop {
            match self.recv().await.expect("kernel connection open") {
                Downstream::Deliver { to, event, .. } => {
                    let to = match to {
                        wire::To::LoggedIn => vec![u64::MAX],
                        wire::To::Only(to) => to,
                    };
                    return (to, event.plain());
                }
                Downstream::Named { .. } => continue,
                other => panic!("expected a delivery, got {other:?}"),
            }
        }
    }

    /// Asserts nothing but acknowledgements and heartbeats arrives for a moment (used only after
    /// a round trip proved the pipe flowed).
    pub async fn quiet(&mut self) {
        let got = tokio::time::timeout(Duration::from_millis(200), self.recv()).await;
        assert!(got.is_err(), "unexpected frame: {got:?}");
    }

    pub fn into_inner(self) -> UnixStream {
        self.framed.into_inner()
    }
}

/// The start of the greeting a frontend sends by default (no `--motd`) as each client connects.
pub const GREETING: &str = "[INFO] - Welcome to the ";

/// Whether a connection's first line is the default greeting, coloured or not.
fn is_greeting(line: &str) -> bool {
    line.replace("\x1b[34m", "")
        .replace("\x1b[0m", "")
        .starts_with(GREETING)
}

/// A telnet-ish client over a raw TCP stream. The default greeting, if it is the first line, is
/// skipped: tests read what their commands bring.
pub struct Telnet {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The first line is still to come, and is skipped if it is the greeting.
    skip_greeting: bool,
}

impl Telnet {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Connects and skips nothing: a greeting is the first line.
    pub async fn connect_greeted(addr: SocketAddr) -> Self {
        Self {
            skip_greeting: false,
            ..Self::connect(addr).await
        }
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            skip_greeting: true,
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Raw bytes up to and including the next `\r\n`; None at EOF.
    pub async fn raw_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let rest = self.buf.split_off(at + 2);
                let line = std::mem::replace(&mut self.buf, rest);
                if std::mem::take(&mut self.skip_greeting) && is_greeting(&String::from_utf8_lossy(&line)) {
                    continue;
                }
                return Some(line);
            }
            let mut chunk = [0u8; 8192];
            let n = within("a telnet line", self.stream.read(&mut chunk)).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next line without its `\r\n`, as text.
    pub async fn line(&mut self) -> String {
        let raw = self.raw_line().await.expect("connection open");
        String::from_utf8(raw[..raw.len() - 2].to_vec()).unwrap()
    }

    /// Reads lines until one equals `expected`; returns those before it.
    pub async fn until(&mut self, expected: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line().await;
            if line == expected {
                return before;
            }
            before.push(line);
        }
    }

    pub async fn login(&mut self, name: &str) {
        self.send(&format!("login {name}")).await;
        self.until(&format!("[SYSTEM INFO] - [{name}] login to chat.")).await;
    }

    /// Reads lines until one contains `needle`; returns those before it.
    pub async fn until_has(&mut self, needle: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line().await;
            if line.contains(needle) {
                return before;
            }
            before.push(line);
        }
    }

    /// True once the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        while self.raw_line().await.is_some() {}
        true
    }
}

pub type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A WebSocket client of the web frontend. The default greeting, if it is the first frame, is
/// skipped, as [`Telnet`] does.
pub struct Web {
    pub ws: WsStream,
    /// The first frame is still to come, and is skipped if it is the greeting.
    skip_greeting: bool,
}

impl Web {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        Self {
            ws,
            skip_greeting: true,
        }
    }

    /// Connects and skips nothing: a greeting is the first frame.
    pub async fn connect_greeted(addr: SocketAddr) -> Self {
        Self {
            skip_greeting: false,
            ..Self::connect(addr).await
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame, parsed.
    pub async fn json(&mut self) -> serde_json::Value {
        loop {
            match within("a WebSocket message", self.ws.next()).await {
                Some(Ok(Message::Text(text))) => {
                    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if std::mem::take(&mut self.skip_greeting) && json["text"].as_str().is_some_and(is_greeting) {
                        continue;
                    }
                    return json;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The `text` of the next response.
    pub async fn text(&mut self) -> String {
        let json = self.json().await;
        assert_eq!(json["action"], "response", "{json}");
        json["text"].as_str().unwrap().to_string()
    }

    pub async fn until(&mut self, expected: &str) {
        while self.text().await != expected {}
    }

    /// Reads responses until one contains `needle`; returns those before it.
    pub async fn until_has(&mut self, needle: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return before;
            }
            before.push(text);
        }
    }

    pub async fn login(&mut self, name: &str) {
        self.send(&format!("login {name}")).await;
        self.until(&format!("[SYSTEM INFO] - [{name}] login to chat.")).await;
    }
}

/// The plain text of an event, as every frontend shows it.
pub fn plain(event: &Event) -> String {
    event.plain()
}

/// `chat-supervisor up` in a temporary directory (`chat_harness::Up`, whose fields and other methods
/// it derefs to): each of these fails the test instead of returning an error.
pub struct Up(chat_harness::Up);

impl Up {
    /// Writes `servers.toml` and starts `up` on it.
    pub fn start(config: &str) -> Self {
        Self(chat_harness::Up::start(bin(), config, &options()).unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// Writes `servers.toml` and starts `up` of the binary `bin` on it.
    pub fn start_bin(bin: &Path, config: &str) -> Self {
        Self(chat_harness::Up::start(bin, config, &options()).unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// Starts `up` in `dir`, which holds a `servers.toml`.
    pub fn start_in(dir: tempfile::TempDir) -> Self {
        Self::start_with_env(dir, &[])
    }

    /// Starts `up` in `dir` with these extra environment variables.
    pub fn start_with_env(dir: tempfile::TempDir, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let mut options = options();
        options.env = env.iter().map(|(k, v)| (k.to_string(), v.to_os_string())).collect();
        Self(chat_harness::Up::start_in(bin(), dir, &options).unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// Waits for the first stdout line containing `needle` that no earlier wait took.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.0.wait_for(needle).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Waits for the `listening` line of `name`: its address and pid.
    pub fn listening(&mut self, name: &str) -> (SocketAddr, u32) {
        self.0.listening(name).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Runs a client command (`status`, `reload`, …) against this supervisor.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.0.cli(args).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The rows of `status --json`, parsed.
    pub fn status(&self) -> Vec<serde_json::Value> {
        self.0.status().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `status --json`, parsed (it exits with 3 when a server is stopped or failed).
    pub fn status_json(&self) -> serde_json::Value {
        self.0.status_json().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The row of `name` in `status`.
    pub fn row(&self, name: &str) -> serde_json::Value {
        self.0.row(name).unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub fn write_config(&self, text: &str) {
        self.0.write_config(text).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

fn options() -> chat_harness::Options {
    chat_harness::Options {
        wait: WAIT,
        // A failing run can be looked into: `KEEP_DIR=1` keeps its directory (logs included),
        // `CHAT_TEST_LOG` sets the processes' `RUST_LOG`.
        keep_dir: std::env::var_os("KEEP_DIR").is_some(),
        rust_log: std::env::var("CHAT_TEST_LOG").unwrap_or_else(|_| chat_harness::Options::default().rust_log),
        ..chat_harness::Options::default()
    }
}

impl std::ops::Deref for Up {
    type Target = chat_harness::Up;

    fn deref(&self) -> &chat_harness::Up {
        &self.0
    }
}

impl std::ops::DerefMut for Up {
    fn deref_mut(&mut self) -> &mut chat_harness::Up {
        &mut self.0
    }
}

/// True once no process has this pid (waits up to `limit`).
pub fn gone(pid: u32, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !chat_harness::exited(pid) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Writes `config` as `dir`'s servers.toml and runs `up` there, which must fail: its stderr.
pub fn up_refused(dir: &Path, config: &str) -> String {
    std::fs::write(dir.join("servers.toml"), config).unwrap();
    let out = Command::new(bin()).arg("up").current_dir(dir).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `[[server]]` block on an ephemeral port (telnet without colour, for plain-text asserts).
pub fn server(name: &str, kind: &str) -> String {
    let color = if kind == "tcp" { "color = false\n" } else { "" };
    format!("[[server]]\nname = \"{name}\"\nkind = \"{kind}\"\nport = 0\n{color}")
}

/// Samples the summed RSS of some processes every 20 ms, on a thread, and keeps the peak.
pub struct Peak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
    /// The sum when sampling started.
    pub before: u64,
}

impl Peak {
    pub fn watch(pids: &[u32]) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pids = pids.to_vec();
        let sum = move || pids.iter().map(|p| rss_kib(*p)).sum::<u64>();
        let before = sum();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(sum());
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(sum())
        });
        Self { stop, thread, before }
    }

    /// The peak growth over the start, in KiB.
    pub fn growth(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = self.thread.join().unwrap();
        peak.saturating_sub(self.before)
    }
}

/// Round trips of a well-behaved user.
#[derive(Debug, Clone)]
pub struct RoundTrips {
    pub samples: Vec<Duration>,
}

impl RoundTrips {
    fn at(&self, fraction: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let at = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
        sorted[at - 1]
    }

    pub fn p50(&self) -> Duration {
        self.at(0.5)
    }

    pub fn p99(&self) -> Duration {
        self.at(0.99)
    }

    pub fn max(&self) -> Duration {
        self.at(1.0)
    }
}

impl std::fmt::Display for RoundTrips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} round trips, p50 {:?}, p99 {:?}, max {:?}",
            self.samples.len(),
            self.p50(),
            self.p99(),
            self.max()
        )
    }
}

/// A well-behaved user who asks `/whoami` ten times a second (half the default `input_rate`) and
/// times each answer, until stopped.
pub struct Neighbour {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<RoundTrips>,
}

impl Neighbour {
    /// On a telnet server (it logs in as `name` first).
    pub async fn telnet(addr: SocketAddr, name: &str) -> Self {
        let mut client = Telnet::connect(addr).await;
        client.login(name).await;
        let name = name.to_string();
        Self::spawn(move |stop| async move {
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let started = std::time::Instant::now();
                client.send("/whoami").await;
                while client.line().await != name {}
                samples.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            RoundTrips { samples }
        })
    }

    /// On a web server.
    pub async fn web(addr: SocketAddr, name: &str) -> Self {
        let mut client = Web::connect(addr).await;
        client.login(name).await;
        let name = name.to_string();
        Self::spawn(move |stop| async move {
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let started = std::time::Instant::now();
                client.send("/whoami").await;
                while client.text().await != name {}
                samples.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            RoundTrips { samples }
        })
    }

    fn spawn<F, Fut>(body: F) -> Self
    where
        F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
        Fut: std::future::Future<Output = RoundTrips> + Send + 'static,
    {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(body(stop.clone()));
        Self { stop, task }
    }

    pub async fn stop(self) -> RoundTrips {
        self.stop.cancel();
        within("the neighbour's last round trip", self.task).await.unwrap()
    }
}

/// A TCP connection from `source` (a loopback address) with a small receive buffer: a client
/// that does not read fills up at once.
pub async fn connect_from(source: &str, addr: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads the default greeting, the first frame a raw WebSocket connection gets after the upgrade.
pub async fn ws_greeting(stream: &mut TcpStream) -> String {
    let (opcode, payload) = ws_frame(stream).await;
    assert_eq!(opcode, 0x81, "expected a text frame, got {opcode:#x} {payload:?}");
    let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let text = json["text"].as_str().unwrap_or_default().to_string();
    assert!(is_greeting(&text), "{json}");
    text
}

/// The next frame the server sends on a raw WebSocket connection: its first byte (FIN and
/// opcode) and its payload.
pub async fn ws_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    within("a WebSocket frame", stream.read_exact(&mut head)).await.unwrap();
    let len = match head[1] {
        126 => {
            let mut len = [0u8; 2];
            within("a WebSocket frame", stream.read_exact(&mut len)).await.unwrap();
            usize::from(u16::from_be_bytes(len))
        }
        127 => {
            let mut len = [0u8; 8];
            within("a WebSocket frame", stream.read_exact(&mut len)).await.unwrap();
            usize::try_from(u64::from_be_bytes(len)).unwrap()
        }
        len => usize::from(len),
    };
    let mut payload = vec![0u8; len];
    within("a WebSocket frame", stream.read_exact(&mut payload))
        .await
        .unwrap();
    (head[0], payload)
}

/// Upgrades a raw connection to a WebSocket by hand; returns the response head.
pub async fn ws_handshake(stream: &mut TcpStream, host: &str) -> String {
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    http_head(stream).await
}

/// Reads an HTTP response head (up to the blank line), byte by byte.
pub async fn http_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match within("an HTTP response", stream.read(&mut byte)).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A masked client frame.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked_fragment(true, opcode, payload)
}

/// A masked client frame, final or not (a fragment of a message).
pub fn masked_fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 1, 9, 3];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// Writes `bytes` again and again for `time`, as fast as the peer takes them; returns how much it
/// took (stops early if the connection fails).
pub async fn flood(stream: &mut (impl tokio::io::AsyncWrite + Unpin), bytes: &[u8], time: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + time;
    let mut sent = 0u64;
    loop {
        match tokio::time::timeout_at(deadline, stream.write_all(bytes)).await {
            Ok(Ok(())) => sent += bytes.len() as u64,
            Ok(Err(_)) | Err(_) => return sent,
        }
    }
}

/// Bytes in the send queue of the server's socket for a client (from /proc/net/tcp).
pub fn send_queue(server_port: u16, client_port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (server, client) = (format!(":{server_port:04X}"), format!(":{client_port:04X}"));
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.len() > 4 && fields[1].ends_with(&server) && fields[2].ends_with(&client))
            .then(|| u64::from_str_radix(fields[4].split(':').next()?, 16).ok())
            .flatten()
    })
}
