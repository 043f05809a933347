//! `chat-bench`: the project's load generator. It starts the system under test itself (the real
//! `chat-supervisor up`, and for comparison the same frontends in one process with no kernel hop),
//! drives it with telnet and WebSocket clients over loopback, and prints one JSON object of
//! figures. `scripts/bench.sh` turns that into BENCHMARKS.md.
//!
//! Scenarios: fan-out (`msgall` deliveries per second and delivery latency), 1:1 latency across
//! frontends at a fixed rate, idle scale (RSS per logged-in connection), frontend and kernel
//! restart gaps under load, and start/stop times.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(name = "chat-bench", about = "Benchmarks chat-supervisor; prints JSON figures.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Clients in the fan-out scenario, spread over 3 telnet and 1 web frontend.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 20)]
    senders: usize,
    /// `msgall` lines per sender.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Logged-in connections held in the idle scenario.
    #[arg(long, default_value_t = 20_000)]
    idle: usize,
    /// Seconds of 1:1 traffic at 1,000 msg/s.
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// Restarts measured per restart scenario.
    #[arg(long, default_value_t = 10)]
    restarts: usize,
    /// Scenarios to run (default all): fanout, latency, idle, frontend-restart, kernel-restart, start-stop.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the figures as a Markdown report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The commit measured, for the report.
    #[arg(long, default_value = "unknown")]
    commit: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// The in-process baseline server: prints `listening kind=K addr=A` lines, then serves.
    #[command(hide = true)]
    Baseline {
        #[arg(long, default_value_t = 3)]
        tcp: usize,
        #[arg(long, default_value_t = 1)]
        ws: usize,
        /// Run on one thread (as each chat-supervisor child does) instead of one per core.
        #[arg(long)]
        single_thread: bool,
    },
    /// Holds logged-in telnet connections (a second process, past one process's file limit).
    #[command(hide = true)]
    Hold {
        #[arg(long, value_delimiter = ',')]
        addrs: Vec<SocketAddr>,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        prefix: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    chat_supervisor::cli::raise_fd_limit();
    let runtime = match cli.command {
        Some(Cmd::Baseline {
            single_thread: true, ..
        }) => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        _ => tokio::runtime::Runtime::new()?,
    };
    match cli.command {
        Some(Cmd::Baseline { tcp, ws, .. }) => runtime.block_on(baseline(tcp, ws)),
        Some(Cmd::Hold { addrs, count, prefix }) => runtime.block_on(hold(addrs, count, prefix)),
        None => {
            let figures = runtime.block_on(run_all(cli.run.clone()))?;
            println!("{}", serde_json::to_string_pretty(&figures)?);
            if let Some(path) = &cli.run.report {
                std::fs::write(path, report(&figures, &cli.run.commit))?;
            }
            Ok(())
        }
    }
}

/// Nanoseconds since the bench started; senders stamp lines with it, receivers subtract.
fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn scenario(args: &RunArgs, name: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == name)
}

async fn run_all(args: RunArgs) -> Result<Value> {
    let mut out = serde_json::Map::new();
    out.insert("machine".into(), machine());
    if scenario(&args, "fanout") {
        let rate = |v: &Value| v["deliveries_per_sec"].as_f64().unwrap_or(0.0);
        let faster = move |a: &Value, b: &Value| rate(a) >= rate(b);
        out.insert("fanout".into(), compared(|s| fanout(&args, s), faster).await?);
    }
    if scenario(&args, "latency") {
        let p99 = |v: &Value| v["latency"]["p99_us"].as_u64().unwrap_or(u64::MAX);
        let faster = move |a: &Value, b: &Value| p99(a) <= p99(b);
        out.insert("latency".into(), compared(|s| latency(&args, s), faster).await?);
    }
    if scenario(&args, "idle") {
        out.insert("idle".into(), idle(&args, System::multi(3, 1).await?).await?);
    }
    if scenario(&args, "frontend-restart") {
        out.insert("frontend_restart".into(), frontend_restart(&args).await?);
    }
    if scenario(&args, "kernel-restart") {
        out.insert("kernel_restart".into(), kernel_restart(&args).await?);
    }
    if scenario(&args, "start-stop") {
        out.insert("start_stop".into(), start_stop(&args).await?);
    }
    Ok(Value::Object(out))
}

/// Runs a scenario on the multi-process system and on the in-process baseline, once on one
/// thread and once on all cores; the faster baseline (`a` is faster than `b`: `faster(a, b)`) is
/// the one compared against.
async fn compared<Run, Fut>(run: Run, faster: impl Fn(&Value, &Value) -> bool) -> Result<Value>
where
    Run: Fn(System) -> Fut,
    Fut: std::future::Future<Output = Result<Value>>,
{
    let multi = run(System::multi(3, 1).await?).await?;
    let single = run(System::baseline(3, 1, true).await?).await?;
    let threaded = run(System::baseline(3, 1, false).await?).await?;
    let base = if faster(&single, &threaded) { &single } else { &threaded };
    Ok(json!({"multi": multi, "baseline": base, "baseline_single_thread": single, "baseline_threaded": threaded}))
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    json!({"cpu": cpu, "cores": cores, "memory_gib": mem / (1 << 20)})
}

/// The system under test: the supervisor with its children, or the in-process baseline.
struct System {
    child: Child,
    tcp: Vec<SocketAddr>,
    ws: Vec<SocketAddr>,
    lines: std::sync::mpsc::Receiver<String>,
    dir: Option<tempdir::Dir>,
    multi: bool,
}

mod tempdir {
    /// A temporary directory removed on drop (the bench keeps its dependencies to the project's).
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            let path = std::env::temp_dir().join(format!("chat-bench-{}-{}", std::process::id(), super::now_ns()));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if std::env::var_os("CHAT_BENCH_KEEP").is_some() {
                eprintln!("kept {}", self.0.display());
                return;
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("in a folder").join(name)
}

/// `max_connections` and `max_connections_per_ip` for the benchmark: more than it ever opens.
const UNLIMITED: usize = 100_000;

impl System {
    async fn multi(tcp: usize, ws: usize) -> Result<Self> {
        let dir = tempdir::Dir::new()?;
        let mut config = String::new();
        for i in 0..tcp + ws {
            let kind = if i < tcp { "tcp" } else { "ws" };
            // The load comes from one address and sends as fast as it can: the per-address cap
            // and input throttling (both on by default) are turned off, as BENCHMARKS.md says.
            config.push_str(&format!(
                "[[server]]\nname = \"s{i}\"\nkind = \"{kind}\"\nport = 0\ncolor = false\n\
                 input_rate = 0\nmax_connections_per_ip = {UNLIMITED}\nmax_connections = {UNLIMITED}\n\n"
            ));
        }
        std::fs::write(dir.0.join("servers.toml"), config)?;
        let mut command = Command::new(sibling("chat-supervisor"));
        command
            .arg("up")
            .current_dir(&dir.0)
            .env("RUST_LOG", "warn,chat_supervisor=info");
        let mut system = Self::spawn(command, tcp, ws, true)?;
        system.dir = Some(dir);
        Ok(system)
    }

    async fn baseline(tcp: usize, ws: usize, single_thread: bool) -> Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["baseline", "--tcp", &tcp.to_string(), "--ws", &ws.to_string()]);
        if single_thread {
            command.arg("--single-thread");
        }
        Self::spawn(command, tcp, ws, false)
    }

    fn spawn(mut command: Command, tcp: usize, ws: usize, multi: bool) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut system = Self {
            child,
            tcp: Vec::new(),
            ws: Vec::new(),
            lines,
            dir: None,
            multi,
        };
        while system.tcp.len() < tcp || system.ws.len() < ws {
            let line = system.wait_for("listening")?;
            let addr: SocketAddr = field(&line, "addr=").parse()?;
            if field(&line, "kind=") == "tcp" {
                system.tcp.push(addr);
            } else {
                system.ws.push(addr);
            }
        }
        Ok(system)
    }

    fn wait_for(&mut self, needle: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("waiting for {needle:?}"))?;
            if line.contains(needle) {
                return Ok(line);
            }
        }
    }

    /// Every frontend address: telnet ones first.
    fn addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.tcp
            .iter()
            .map(|a| (*a, false))
            .chain(self.ws.iter().map(|a| (*a, true)))
            .collect()
    }

    /// The pids of the supervisor's children (kernel and frontends), from `status --json`.
    fn children(&self) -> Result<BTreeMap<String, u32>> {
        let dir = &self
            .dir
            .as_ref()
            .context("only the multi-process system has children")?
            .0;
        let out = Command::new(sibling("chat-supervisor"))
            .args(["status", "--json"])
            .current_dir(dir)
            .output()?;
        let status: Value = serde_json::from_slice(&out.stdout)?;
        let rows = status["servers"].as_array().context("no servers in `status --json`")?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["pid"].as_u64()? as u32)))
            .collect())
    }

    /// RSS of the system's processes in KiB: the supervisor (or the baseline) and every child.
    fn rss_kib(&self) -> Result<BTreeMap<String, u64>> {
        let mut all = BTreeMap::new();
        all.insert(
            if self.multi { "supervisor" } else { "baseline" }.to_string(),
            rss(self.child.id()),
        );
        if self.multi {
            for (name, pid) in self.children()? {
                all.insert(name, rss(pid));
            }
        }
        Ok(all)
    }

    fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap_or("")
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What a client's reader records.
#[derive(Default)]
struct Tally {
    /// Stamped lines received.
    count: AtomicU64,
    /// Newest receive time of a stamped line.
    last_ns: AtomicU64,
    /// Delivery latencies, in microseconds.
    latencies: Mutex<Vec<u32>>,
    /// The client's connection ended.
    closed: AtomicBool,
}

/// A connected, logged-in client: a writer and a reader task tallying stamped lines (`t=NANOS`).
struct Client {
    send: mpsc::UnboundedSender<String>,
    tally: Arc<Tally>,
}

impl Client {
    /// Connects, logs in as `name`, and waits for the login broadcast.
    async fn login(addr: SocketAddr, ws: bool, name: &str, record: bool) -> Result<Self> {
        let tally = Arc::new(Tally::default());
        let (send, outgoing) = mpsc::unbounded_channel::<String>();
        let (logged_in, wait) = tokio::sync::oneshot::channel();
        let lines = Lines {
            tally: tally.clone(),
            me: format!("[{name}] login to chat."),
            logged_in: Some(logged_in),
            record,
        };
        if ws {
            let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
            tokio::spawn(ws_client(stream, outgoing, lines));
        } else {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            tokio::spawn(tcp_client(stream, outgoing, lines));
        }
        send.send(format!("login {name}"))?;
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .context("login timed out")?
            .context("connection closed before login")?;
        Ok(Self { send, tally })
    }

    fn say(&self, line: String) {
        let _ = self.send.send(line);
    }
}

/// Records a stamped line: the stamp is the number after `t=`.
fn tally_line(line: &[u8], tally: &Tally, record: bool) {
    let Some(at) = line.windows(2).position(|w| w == b"t=") else {
        return;
    };
    let digits = line[at + 2..].iter().take_while(|b| b.is_ascii_digit());
    let sent = digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let now = now_ns();
    tally.count.fetch_add(1, Ordering::Relaxed);
    tally.last_ns.fetch_max(now, Ordering::Relaxed);
    if record {
        let micros = (now.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32;
        tally.latencies.lock().unwrap().push(micros);
    }
}

/// What a client's reader does with each line: notice its own login, tally stamped lines.
struct Lines {
    tally: Arc<Tally>,
    /// Its own login broadcast, and who waits for it.
    me: String,
    logged_in: Option<tokio::sync::oneshot::Sender<()>>,
    record: bool,
}

impl Lines {
    fn line(&mut self, line: &[u8]) {
        if self.logged_in.is_some() && line.windows(self.me.len()).any(|w| w == self.me.as_bytes()) {
            let _ = self.logged_in.take().map(|l| l.send(()));
        }
        tally_line(line, &self.tally, self.record);
    }

    fn closed(&self) {
        self.tally.closed.store(true, Ordering::Relaxed);
    }
}

async fn tcp_client(stream: TcpStream, mut outgoing: mpsc::UnboundedReceiver<String>, mut lines: Lines) {
    let (mut read, mut write) = stream.into_split();
    tokio::spawn(async move {
        let mut batch = String::new();
        while let Some(line) = outgoing.recv().await {
            batch.push_str(&line);
            batch.push_str("\r\n");
            while let Ok(more) = outgoing.try_recv() {
                batch.push_str(&more);
                batch.push_str("\r\n");
            }
            if write.write_all(batch.as_bytes()).await.is_err() {
                return;
            }
            batch.clear();
        }
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut held = Vec::new();
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        held.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = held[start..].iter().position(|b| *b == b'\n') {
            lines.line(&held[start..start + end]);
            start += end + 1;
        }
        held.drain(..start);
    }
    lines.closed();
}

async fn ws_client(
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    mut lines: Lines,
) {
    let (mut write, mut read) = stream.split();
    tokio::spawn(async move {
        while let Some(line) = outgoing.recv().await {
            if write.send(Message::text(line)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = read.next().await {
        if let Message::Text(text) = message {
            lines.line(text.as_bytes());
        }
    }
    lines.closed();
}

/// Logs in `count` clients named `{prefix}{i}` round-robin over `addrs`, 200 at a time.
async fn crowd(addrs: &[(SocketAddr, bool)], count: usize, prefix: &str, record: bool) -> Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(count);
    let mut pending = futures_util::stream::FuturesOrdered::new();
    for i in 0..count {
        let (addr, ws) = addrs[i % addrs.len()];
        let name = format!("{prefix}{i}");
        pending.push_back(async move { Client::login(addr, ws, &name, record).await });
        if pending.len() >= 200 {
            clients.push(pending.next().await.expect("pending")?);
        }
    }
    while let Some(client) = pending.next().await {
        clients.push(client?);
    }
    Ok(clients)
}

fn percentiles(mut samples: Vec<u32>) -> Value {
    if samples.is_empty() {
        return json!(null);
    }
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    json!({"samples": samples.len(), "p50_us": at(0.5), "p99_us": at(0.99), "max_us": samples[samples.len() - 1]})
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// `senders` clients each send `messages` stamped `msgall` lines as fast as they can; every one
/// of `clients` receives every line.
async fn fanout(args: &RunArgs, system: System) -> Result<Value> {
    let addrs = system.addrs();
    let clients = crowd(&addrs, args.clients, "f", true).await?;
    // Let the login broadcasts drain before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &clients {
        c.tally.latencies.lock().unwrap().clear();
        c.tally.count.store(0, Ordering::Relaxed);
    }
    let expected = (args.senders * args.messages * args.clients) as u64;
    let started = now_ns();
    let step = args.clients / args.senders.max(1);
    for s in 0..args.senders {
        let sender = clients[s * step].send.clone();
        let messages = args.messages;
        // All at once: how fast the lines go out must not depend on how busy this process is.
        for _ in 0..messages {
            let _ = sender.send(format!("msgall t={}", now_ns()));
        }
    }
    let total = || {
        clients
            .iter()
            .map(|c| c.tally.count.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let complete = wait_until(Duration::from_secs(300), || total() >= expected).await;
    let received = total();
    let last = clients
        .iter()
        .map(|c| c.tally.last_ns.load(Ordering::Relaxed))
        .max()
        .unwrap_or(started);
    let seconds = (last.saturating_sub(started)) as f64 / 1e9;
    let mut samples = Vec::with_capacity(received as usize);
    for c in &clients {
        samples.append(&mut c.tally.latencies.lock().unwrap());
    }
    let rss = system.rss_kib()?;
    drop(clients);
    system.stop();
    Ok(json!({
        "clients": args.clients, "senders": args.senders, "messages": args.messages,
        "expected": expected, "received": received, "complete": complete,
        "seconds": seconds, "deliveries_per_sec": received as f64 / seconds,
        "latency": percentiles(samples), "rss_kib": rss,
    }))
}

/// Ten pairs across frontends; 1,000 stamped `msg` lines a second in all, one every millisecond.
async fn latency(args: &RunArgs, system: System) -> Result<Value> {
    let addrs = system.addrs();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..10 {
        let (a, a_ws) = addrs[i % addrs.len()];
        let (b, b_ws) = addrs[(i + 1) % addrs.len()];
        senders.push(Client::login(a, a_ws, &format!("s{i}"), false).await?);
        receivers.push(Client::login(b, b_ws, &format!("r{i}"), true).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for r in &receivers {
        r.tally.latencies.lock().unwrap().clear();
        r.tally.count.store(0, Ordering::Relaxed);
    }
    let total = args.latency_secs * 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0..total {
        tick.tick().await;
        let i = (n % 10) as usize;
        senders[i].say(format!("msg r{i} t={}", now_ns()));
    }
    let received = || {
        receivers
            .iter()
            .map(|r| r.tally.count.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    wait_until(Duration::from_secs(10), || received() >= total).await;
    let mut samples = Vec::new();
    for r in &receivers {
        samples.append(&mut r.tally.latencies.lock().unwrap());
    }
    let got = received();
    system.stop();
    Ok(json!({"rate_per_sec": 1000, "sent": total, "received": got, "latency": percentiles(samples)}))
}

/// `idle` logged-in connections over the frontends; RSS of every process once all are in.
async fn idle(args: &RunArgs, system: System) -> Result<Value> {
    let addrs = system.addrs();
    let before = system.rss_kib()?;
    // One process may hold 20,000 files at most: a helper holds half.
    let here = args.idle / 2;
    let tcp: Vec<String> = system.tcp.iter().map(|a| a.to_string()).collect();
    let mut helper = Command::new(std::env::current_exe()?)
        .args([
            "hold",
            "--addrs",
            &tcp.join(","),
            "--count",
            &(args.idle - here).to_string(),
            "--prefix",
            "h",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    let clients = crowd(&addrs, here, "i", false).await?;
    let mut line = String::new();
    {
        let stdout = helper.stdout.take().expect("piped");
        let mut reader = std::io::BufReader::new(stdout);
        std::io::BufRead::read_line(&mut reader, &mut line)?;
    }
    if !line.starts_with("held") {
        bail!("the helper failed: {line:?}");
    }
    let logged_in = started.elapsed();
    // Held idle for a few seconds: every login broadcast delivered, freed memory handed back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = system.rss_kib()?;
    let total_before: u64 = before.values().sum();
    let total_after: u64 = after.values().sum();
    let alive = clients
        .iter()
        .filter(|c| !c.tally.closed.load(Ordering::Relaxed))
        .count();
    let _ = helper.kill();
    let _ = helper.wait();
    drop(clients);
    system.stop();
    Ok(json!({
        "connections": args.idle, "alive_here": alive, "login_seconds": logged_in.as_secs_f64(),
        "rss_kib_before": before, "rss_kib_after": after,
        "total_kib": total_after, "per_connection_kib": (total_after.saturating_sub(total_before)) as f64 / args.idle as f64,
        "per_connection_kib_including_empty": total_after as f64 / args.idle as f64,
    }))
}

async fn hold(addrs: Vec<SocketAddr>, count: usize, prefix: String) -> Result<()> {
    let addrs: Vec<(SocketAddr, bool)> = addrs.into_iter().map(|a| (a, false)).collect();
    let clients = crowd(&addrs, count, &prefix, false).await?;
    println!("held {}", clients.len());
    std::future::pending::<()>().await;
    Ok(())
}

/// `kill -9` of a telnet frontend under a loop of connection attempts, `restarts` times: refused
/// attempts, and the time from the kill to its new `listening` line.
async fn frontend_restart(args: &RunArgs) -> Result<Value> {
    let mut system = System::multi(3, 1).await?;
    let addr = system.tcp[0];
    let mut gaps = Vec::new();
    let refused = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (refused, attempts, stop) = (refused.clone(), attempts.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                attempts.fetch_add(1, Ordering::Relaxed);
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    for _ in 0..args.restarts {
        let pid = system.children()?["s0"];
        // Past the supervisor's 1 s "started" mark, so each restart is a first one.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        system.wait_for("listening name=s0 ")?;
        gaps.push(killed.elapsed().as_micros() as u32);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = hammer.join();
    system.stop();
    Ok(json!({
        "restarts": args.restarts, "connection_attempts": attempts.load(Ordering::Relaxed),
        "refused": refused.load(Ordering::Relaxed), "kill_to_listening": percentiles(gaps),
    }))
}

/// `kill -9` of the kernel while clients chat, `restarts` times: lost messages, disconnected
/// clients, and how long until a message sent right after the kill arrives.
async fn kernel_restart(args: &RunArgs) -> Result<Value> {
    let mut system = System::multi(3, 1).await?;
    let addrs = system.addrs();
    let clients = crowd(&addrs, 100, "k", true).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut gaps = Vec::new();
    let mut sent = 0u64;
    let receiver = &clients[1];
    for round in 0..args.restarts {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // Traffic before, across and after the kill: a private line every millisecond.
        let kernel = system.children()?["kernel"];
        for i in 0..50 {
            clients[(i % 50) * 2].say(format!("msg k1 t={}", now_ns()));
            sent += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = receiver.tally.count.load(Ordering::Relaxed);
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(kernel as i32),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        clients[0].say(format!("msg k1 t={}", now_ns()));
        sent += 1;
        let flowing = wait_until(Duration::from_secs(10), || {
            receiver.tally.count.load(Ordering::Relaxed) > before
        })
        .await;
        if flowing {
            gaps.push(killed.elapsed().as_micros() as u32);
        }
        for i in 0..50 {
            clients[(i % 49) * 2 + 2].say(format!("msg k1 t={}", now_ns()));
            sent += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        system.wait_for("ready name=kernel")?;
        eprintln!("kernel restart {round}: flowing again after {:?}", gaps.last());
    }
    wait_until(Duration::from_secs(10), || {
        receiver.tally.count.load(Ordering::Relaxed) >= sent
    })
    .await;
    let received = receiver.tally.count.load(Ordering::Relaxed);
    let disconnected = clients
        .iter()
        .filter(|c| c.tally.closed.load(Ordering::Relaxed))
        .count();
    drop(clients);
    system.stop();
    Ok(json!({
        "restarts": args.restarts, "clients": 100, "sent": sent, "received": received,
        "lost": sent.saturating_sub(received), "duplicated": received.saturating_sub(sent),
        "disconnected": disconnected, "kill_to_flowing": percentiles(gaps),
    }))
}

/// `up` until every port accepts, and `down` until no process is left; `restarts` times.
async fn start_stop(args: &RunArgs) -> Result<Value> {
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for _ in 0..args.restarts {
        let started = Instant::now();
        let system = System::multi(3, 1).await?;
        for (addr, _) in system.addrs() {
            TcpStream::connect(addr).await?;
        }
        ups.push(started.elapsed().as_micros() as u32);
        let mut pids: Vec<u32> = system.children()?.values().copied().collect();
        pids.push(system.child.id());
        let dir = system.dir.as_ref().expect("multi").0.clone();
        let stopped = Instant::now();
        let status = Command::new(sibling("chat-supervisor"))
            .arg("down")
            .current_dir(&dir)
            .status()?;
        if !status.success() {
            bail!("down failed");
        }
        wait_until(Duration::from_secs(10), || pids.iter().all(|p| gone(*p))).await;
        downs.push(stopped.elapsed().as_micros() as u32);
        drop(system);
    }
    Ok(json!({"up_to_all_ports_ready": percentiles(ups), "down_to_no_process": percentiles(downs)}))
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.contains(") Z "),
    }
}

/// The in-process baseline: the same frontends and chat state, no kernel process.
async fn baseline(tcp: usize, ws: usize) -> Result<()> {
    use chat_supervisor::frontend::{Kind, Limits};
    let mut listeners = Vec::new();
    for i in 0..tcp + ws {
        let kind = if i < tcp { Kind::Tcp } else { Kind::Ws };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        println!("listening kind={kind} addr={}", listener.local_addr()?);
        listeners.push((kind, listener));
    }
    let limits = Limits {
        max_connections: UNLIMITED,
        max_connections_per_ip: UNLIMITED,
        input_rate: 0,
        ..Limits::default()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    chat_supervisor::frontend::local::run(listeners, false, limits, shutdown).await
}

/// The figures as BENCHMARKS.md: machine, date, commit, then each figure against its target.
fn report(f: &Value, commit: &str) -> String {
    let ms = |v: &Value| {
        v.as_f64()
            .map_or("n/a".to_string(), |us| format!("{:.2} ms", us / 1000.0))
    };
    let num = |v: &Value| v.as_f64().map_or("n/a".to_string(), |n| format!("{n:.0}"));
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    };
    let mut rows: Vec<[String; 4]> = Vec::new();
    let fan = &f["fanout"];
    if !fan.is_null() {
        let (multi, base) = (
            &fan["multi"]["deliveries_per_sec"],
            &fan["baseline"]["deliveries_per_sec"],
        );
        let ratio = multi.as_f64().zip(base.as_f64()).map(|(m, b)| m / b);
        rows.push([
            format!(
                "fan-out: {} clients over 3 tcp + 1 ws, {} senders x {} `msgall`, deliveries/s",
                fan["multi"]["clients"], fan["multi"]["senders"], fan["multi"]["messages"]
            ),
            ">= 0.8x baseline".into(),
            format!(
                "{} (baseline {}): **{:.2}x**",
                num(multi),
                num(base),
                ratio.unwrap_or(0.0)
            ),
            verdict(ratio.map(|r| r >= 0.8)).into(),
        ]);
        for (label, key) in [("p50", "p50_us"), ("p99", "p99_us")] {
            let (m, b) = (&fan["multi"]["latency"][key], &fan["baseline"]["latency"][key]);
            let ratio = m.as_f64().zip(b.as_f64()).map(|(m, b)| m / b);
            rows.push([
                format!("fan-out delivery latency {label} (queueing under a burst)"),
                "-".into(),
                format!("{} (baseline {}): {:.2}x", ms(m), ms(b), ratio.unwrap_or(0.0)),
                "-".into(),
            ]);
        }
        let lost = fan["multi"]["expected"].as_u64().unwrap_or(0) - fan["multi"]["received"].as_u64().unwrap_or(0);
        rows.push([
            "fan-out deliveries missing".into(),
            "0".into(),
            lost.to_string(),
            verdict(Some(lost == 0)).into(),
        ]);
    }
    let lat = &f["latency"];
    if !lat.is_null() {
        for (label, key) in [("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us")] {
            let (m, b) = (&lat["multi"]["latency"][key], &lat["baseline"]["latency"][key]);
            let ok = (key == "p99_us").then(|| m.as_f64().is_some_and(|m| m <= 1000.0));
            rows.push([
                format!("1:1 `msg` latency across frontends at 1,000 msg/s, {label}"),
                if key == "p99_us" { "<= 1 ms".into() } else { "-".into() },
                format!("{} (baseline {})", ms(m), ms(b)),
                if key == "p99_us" {
                    verdict(ok).into()
                } else {
                    "-".into()
                },
            ]);
        }
    }
    let idle = &f["idle"];
    if !idle.is_null() {
        let per = idle["per_connection_kib"].as_f64();
        rows.push([
            format!(
                "idle: {} logged-in connections, RSS per connection, all processes",
                idle["connections"]
            ),
            "<= 8 KiB".into(),
            format!(
                "{:.2} KiB ({} KiB in all; {:.2} KiB counting the empty system)",
                per.unwrap_or(0.0),
                idle["total_kib"],
                idle["per_connection_kib_including_empty"].as_f64().unwrap_or(0.0)
            ),
            verdict(per.map(|p| p <= 8.0)).into(),
        ]);
    }
    let fr = &f["frontend_restart"];
    if !fr.is_null() {
        let refused = fr["refused"].as_u64();
        rows.push([
            format!(
                "frontend `kill -9` under {} connection attempts: refused",
                fr["connection_attempts"]
            ),
            "0".into(),
            refused.map_or("n/a".into(), |r| r.to_string()),
            verdict(refused.map(|r| r == 0)).into(),
        ]);
        let median = &fr["kill_to_listening"]["p50_us"];
        rows.push([
            format!(
                "frontend `kill -9` to its new listening line, median of {}",
                fr["restarts"]
            ),
            "<= 100 ms".into(),
            format!("{} (max {})", ms(median), ms(&fr["kill_to_listening"]["max_us"])),
            verdict(median.as_f64().map(|m| m <= 100_000.0)).into(),
        ]);
    }
    let kr = &f["kernel_restart"];
    if !kr.is_null() {
        for (label, key) in [
            ("disconnected clients", "disconnected"),
            ("lost messages", "lost"),
            ("duplicated messages", "duplicated"),
        ] {
            let n = kr[key].as_u64();
            rows.push([
                format!(
                    "kernel `kill -9` x{} under traffic ({} clients): {label}",
                    kr["restarts"], kr["clients"]
                ),
                "0".into(),
                n.map_or("n/a".into(), |n| n.to_string()),
                verdict(n.map(|n| n == 0)).into(),
            ]);
        }
        let median = &kr["kill_to_flowing"]["p50_us"];
        rows.push([
            "kernel `kill -9` until chat flows again, median".into(),
            "<= 200 ms".into(),
            format!("{} (max {})", ms(median), ms(&kr["kill_to_flowing"]["max_us"])),
            verdict(median.as_f64().map(|m| m <= 200_000.0)).into(),
        ]);
    }
    let ss = &f["start_stop"];
    if !ss.is_null() {
        let up = &ss["up_to_all_ports_ready"]["p50_us"];
        let down = &ss["down_to_no_process"]["p50_us"];
        rows.push([
            "`up` until every port accepts (4 servers), median".into(),
            "<= 300 ms".into(),
            format!("{} (max {})", ms(up), ms(&ss["up_to_all_ports_ready"]["max_us"])),
            verdict(up.as_f64().map(|m| m <= 300_000.0)).into(),
        ]);
        rows.push([
            "`down` until no process is left, median".into(),
            "<= 1 s".into(),
            format!("{} (max {})", ms(down), ms(&ss["down_to_no_process"]["max_us"])),
            verdict(down.as_f64().map(|m| m <= 1_000_000.0)).into(),
        ]);
    }
    let m = &f["machine"];
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(
        "Written by `scripts/bench.sh` (the `chat-bench` load generator, release build). Every figure comes\n",
    );
    out.push_str("from one run; ratios compare the multi-process system with the in-process baseline (the same\n");
    out.push_str("frontends on one chat state, no kernel hop) measured in the same run, on one thread and on all\n");
    out.push_str("cores; the faster of the two is the baseline. The load generator shares the machine with the\n");
    out.push_str("system under test.\n\n");
    out.push_str("The load comes from one address, as fast as each client can send: every server of both systems\n");
    out.push_str("runs with `input_rate = 0` (input throttling off; the default is 20 lines a second per client)\n");
    out.push_str("and `max_connections_per_ip` and `max_connections` at 100000 (the per-address default is 64).\n\n");
    out.push_str(&format!(
        "- machine: {}, {} cores, {} GiB\n- date: {}\n- commit: {commit}\n\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
    ));
    out.push_str("| figure | target | measured | |\n|---|---|---|---|\n");
    for row in rows {
        out.push_str(&format!("| {} | {} | {} | {} |\n", row[0], row[1], row[2], row[3]));
    }
    out.push_str("\nThe raw figures of this run, as `chat-bench` printed them:\n\n```json\n");
    out.push_str(&serde_json::to_string_pretty(f).unwrap_or_default());
    out.push_str("\n```\n");
    out
}
