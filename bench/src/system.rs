//! The system under test: `chat-supervisor up` with its children (run by `chat-harness`, as the
//! integration tests run it), or the in-process baseline (`chat-bench baseline`, a child of ours).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chat_harness::{Options, Stdout, Up, field};

/// `max_connections` and `max_connections_per_ip` for the benchmark: more than it ever opens.
pub const UNLIMITED: usize = 100_000;

/// How long any wait for the system may take.
const WAIT: Duration = Duration::from_secs(30);

/// A system's frontends and the processes behind them: killed on drop, or [`System::stop`]ped.
pub struct System {
    pub tcp: Vec<SocketAddr>,
    pub ws: Vec<SocketAddr>,
    run: Run,
}

enum Run {
    /// The supervisor and its children.
    Multi(Up),
    /// One process: the frontends on one chat state.
    Baseline(Baseline),
    /// Several hosts' `up`s on one Redis (`[cluster]`), and that Redis.
    Cluster(Vec<Up>, chat_harness::Redis),
}

impl System {
    /// `chat-supervisor up` with `tcp` telnet servers `s0`, `s1`, … then `ws` web servers, once
    /// every server listens and the kernel is ready.
    pub fn multi(tcp: usize, ws: usize) -> Result<Self> {
        let mut config = String::new();
        for i in 0..tcp + ws {
            config.push_str(&server(i, if i < tcp { "tcp" } else { "ws" }));
        }
        let mut up = Up::start(supervisor_bin()?, &config, &options())?;
        let (mut tcp_addrs, mut ws_addrs) = (Vec::new(), Vec::new());
        for i in 0..tcp + ws {
            let (addr, _) = up.listening(&format!("s{i}"))?;
            if i < tcp { &mut tcp_addrs } else { &mut ws_addrs }.push(addr);
        }
        // Taken now, so that a wait for the kernel's next start is not answered by its first.
        up.wait_for("ready name=kernel")?;
        Ok(Self {
            tcp: tcp_addrs,
            ws: ws_addrs,
            run: Run::Multi(up),
        })
    }

    /// `nodes` hosts (`up`s named `h1`, `h2`, …) on one Redis of our own, the load the same as
    /// [`System::multi`]'s `(nodes, 1)`: node `i` serves telnet server `s{i}`, and the last one
    /// also web server `s{nodes}`.
    pub fn cluster(nodes: usize) -> Result<Self> {
        let redis = chat_harness::Redis::start()?;
        let (mut tcp, mut ws, mut ups) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..nodes {
            let mut config = format!("[cluster]\nredis = \"{}\"\nnode = \"h{}\"\n\n", redis.url(), n + 1);
            config.push_str(&server(n, "tcp"));
            if n + 1 == nodes {
                config.push_str(&server(nodes, "ws"));
            }
            let mut up = Up::start(supervisor_bin()?, &config, &options())?;
            tcp.push(up.listening(&format!("s{n}"))?.0);
            if n + 1 == nodes {
                ws.push(up.listening(&format!("s{nodes}"))?.0);
            }
            up.wait_for("ready name=kernel")?;
            ups.push(up);
        }
        Ok(Self {
            tcp,
            ws,
            run: Run::Cluster(ups, redis),
        })
    }

    /// The Redis of a cluster.
    pub fn redis(&self) -> Option<&chat_harness::Redis> {
        match &self.run {
            Run::Cluster(_, redis) => Some(redis),
            _ => None,
        }
    }

    /// The in-process baseline with `tcp` telnet and `ws` web servers, on one thread or on all
    /// cores, once every server listens.
    pub fn baseline(tcp: usize, ws: usize, single_thread: bool) -> Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["baseline", "--tcp", &tcp.to_string(), "--ws", &ws.to_string()]);
        if single_thread {
            command.arg("--single-thread");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = Stdout::capture(&mut child)?;
        // Owned before the waits, so that a failed wait still kills it.
        let mut baseline = Baseline { child, stdout };
        let (mut tcp_addrs, mut ws_addrs) = (Vec::new(), Vec::new());
        while tcp_addrs.len() < tcp || ws_addrs.len() < ws {
            let line = baseline.stdout.wait_for("listening", WAIT)?;
            let addr = field(&line, "addr=").with_context(|| format!("no addr= in {line:?}"))?;
            let addr: SocketAddr = addr.parse()?;
            if field(&line, "kind=") == Some("tcp") {
                &mut tcp_addrs
            } else {
                &mut ws_addrs
            }
            .push(addr);
        }
        Ok(Self {
            tcp: tcp_addrs,
            ws: ws_addrs,
            run: Run::Baseline(baseline),
        })
    }

    /// Every frontend address: telnet ones first, each with whether it is a web server.
    pub fn addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.tcp
            .iter()
            .map(|a| (*a, false))
            .chain(self.ws.iter().map(|a| (*a, true)))
            .collect()
    }

    /// The supervisor, for what only the multi-process system has (children, stdout, commands).
    pub fn up(&mut self) -> Result<&mut Up> {
        match &mut self.run {
            Run::Multi(up) => Ok(up),
            Run::Baseline(_) | Run::Cluster(..) => bail!("only the multi-process system has one supervisor"),
        }
    }

    /// The pid of the process serving frontend `i` of [`System::addrs`]: server `s{i}`'s, or the
    /// baseline's.
    pub fn frontend_pid(&self, i: usize) -> Result<u32> {
        match &self.run {
            Run::Multi(up) => {
                let name = format!("s{i}");
                up.children()?
                    .get(&name)
                    .copied()
                    .with_context(|| format!("no {name} in status"))
            }
            Run::Baseline(b) => Ok(b.child.id()),
            Run::Cluster(..) => bail!("frontend_pid is for one host"),
        }
    }

    /// Every process of the system: the supervisor and its children, or the baseline; of a
    /// cluster, every host's and Redis.
    pub fn pids(&self) -> Result<Vec<u32>> {
        let of = |up: &Up| -> Result<Vec<u32>> {
            let mut pids: Vec<u32> = up.children()?.into_values().collect();
            pids.push(up.proc.pid());
            Ok(pids)
        };
        match &self.run {
            Run::Multi(up) => of(up),
            Run::Baseline(b) => Ok(vec![b.child.id()]),
            Run::Cluster(ups, redis) => {
                let mut pids = Vec::new();
                for up in ups {
                    pids.extend(of(up)?);
                }
                pids.extend(redis.pid());
                Ok(pids)
            }
        }
    }

    /// RSS of the system's processes in KiB: the supervisor and every child, or the baseline.
    pub fn rss_kib(&self) -> Result<BTreeMap<String, u64>> {
        match &self.run {
            Run::Multi(up) => up.rss_kib(),
            Run::Cluster(ups, _) => {
                let mut all = BTreeMap::new();
                for (n, up) in ups.iter().enumerate() {
                    all.extend(up.rss_kib()?.into_iter().map(|(k, v)| (format!("h{}.{k}", n + 1), v)));
                }
                Ok(all)
            }
            Run::Baseline(b) => Ok(BTreeMap::from([(
                "baseline".into(),
                chat_harness::rss_kib(b.child.id()),
            )])),
        }
    }

    /// Proportional memory (shared pages counted once over all processes) in KiB, as
    /// [`System::rss_kib`].
    pub fn pss_kib(&self) -> Result<BTreeMap<String, u64>> {
        match &self.run {
            Run::Multi(up) => up.pss_kib(),
            Run::Cluster(..) => bail!("pss_kib is for one host"),
            Run::Baseline(b) => Ok(BTreeMap::from([(
                "baseline".into(),
                chat_harness::pss_kib(b.child.id()),
            )])),
        }
    }

    /// Stops the system with SIGTERM and reaps it. A slow stop is worth a word, not the run.
    pub fn stop(self) {
        let stopped = match self.run {
            Run::Multi(up) => up.stop(),
            Run::Baseline(mut b) => chat_harness::terminate(&mut b.child, WAIT),
            Run::Cluster(ups, _redis) => ups
                .into_iter()
                .map(Up::stop)
                .find(Result::is_err)
                .unwrap_or(Ok(Default::default())),
        };
        if let Err(e) = stopped {
            eprintln!("warning: {e:#}");
        }
    }
}

/// A `[[server]]` `s{i}` for the benchmark. The load comes from one address and sends as fast as
/// it can: the per-address cap and input throttling (both on by default) are turned off, as
/// BENCHMARKS.md says.
fn server(i: usize, kind: &str) -> String {
    format!(
        "[[server]]\nname = \"s{i}\"\nkind = \"{kind}\"\nport = 0\ncolor = false\n\
         input_rate = 0\nmax_connections_per_ip = {UNLIMITED}\nmax_connections = {UNLIMITED}\n\n"
    )
}

fn options() -> Options {
    Options {
        rust_log: "warn,chat_supervisor=info".into(),
        stderr: false,
        wait: WAIT,
        keep_dir: std::env::var_os("CHAT_BENCH_KEEP").is_some(),
        env: Vec::new(),
    }
}

/// `chat-bench baseline`, killed and reaped on drop.
struct Baseline {
    child: Child,
    /// Read to its end, so that the baseline never writes into a closed pipe.
    stdout: Stdout,
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `chat-supervisor` measured, if not the one beside this binary (`--supervisor`).
static SUPERVISOR: OnceLock<PathBuf> = OnceLock::new();

/// Measures the `chat-supervisor` at `bin` (an older build, say) instead of the one beside this
/// binary. Set once, before any system starts.
pub fn use_supervisor(bin: PathBuf) -> Result<()> {
    // Absolute: `up` runs in a directory of its own.
    let bin = std::fs::canonicalize(&bin).with_context(|| format!("no chat-supervisor at {}", bin.display()))?;
    SUPERVISOR
        .set(bin)
        .map_err(|_| anyhow::anyhow!("the supervisor to measure is chosen once"))
}

/// The `chat-supervisor` measured: `--supervisor`'s, or the one beside this binary, as
/// `cargo build --workspace --bins` leaves it.
fn supervisor_bin() -> Result<PathBuf> {
    if let Some(bin) = SUPERVISOR.get() {
        return Ok(bin.clone());
    }
    let exe = std::env::current_exe().context("own path")?;
    let bin = exe.parent().context("own folder")?.join("chat-supervisor");
    if !bin.exists() {
        bail!(
            "no chat-supervisor beside chat-bench at {}: build both with `cargo build --release --workspace --bins`",
            bin.display()
        );
    }
    Ok(bin)
}
