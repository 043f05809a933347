//! `chat-bench`: the project's load generator. It starts the system under test itself (the real
//! `chat-supervisor up`, and for comparison the same frontends in one process with no kernel hop),
//! drives it with telnet and WebSocket clients over loopback, and prints one JSON object of
//! figures. `scripts/bench.sh` turns that into BENCHMARKS.md.
//!
//! # Layout
//! - `main.rs`: the command line, and which scenarios run.
//! - [`system`]: the system under test, multi-process (through `chat-harness`) or the baseline.
//! - [`baseline`]: the in-process baseline server (`chat-bench baseline`).
//! - [`clients`]: logged-in load clients that stamp their lines and tally what arrives.
//! - [`ngircd`] and [`irc`]: the peer, Debian's `ngircd`, and IRC load clients for it, for
//!   `scenarios::peer`, which reads ngircd's CPU time with [`cpu`].
//! - [`scenarios`]: one file per scenario: fan-out (`msgall` deliveries per second and delivery
//!   latency), the fan-out at 5,000 clients in interleaved rounds against the baseline, a burst of
//!   1.6 MB to each client (nothing lost, nobody dropped), web against telnet CPU per delivery,
//!   1:1 latency across frontends at a fixed rate, idle scale (the whole system's RSS per
//!   logged-in connection, per WebSocket, and after a login storm), frontend and kernel restart
//!   gaps under load, and start/stop times.
//! - [`cpu`]: a process's CPU seconds and write system calls, from /proc.
//! - [`report`]: the figures as BENCHMARKS.md (pure), beside an earlier run's if given.
//!
//! `chat-supervisor` is expected beside this binary (`cargo build --release --workspace --bins`);
//! `--supervisor` measures another build, an older one say, with this same load generator.

mod baseline;
mod clients;
mod cpu;
mod irc;
mod ngircd;
mod report;
mod scenarios;
mod system;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use system::System;

#[derive(Parser)]
#[command(name = "chat-bench", about = "Benchmarks chat-supervisor; prints JSON figures.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// Clients in the fan-out, burst and web-cpu scenarios, spread over 3 telnet and 1 web
    /// frontend (web-cpu: all on one).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Clients in the fanout-5000 scenario.
    #[arg(long, default_value_t = 5000)]
    pub large_clients: usize,
    /// Rounds of fanout-5000, each the multi-process system then the baselines.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// `msgall` lines per sender in the burst scenario.
    #[arg(long, default_value_t = 1000)]
    pub burst_messages: usize,
    #[arg(long, default_value_t = 20)]
    pub senders: usize,
    /// `msgall` lines per sender.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Logged-in connections held in the idle and login-storm scenarios.
    #[arg(long, default_value_t = 10_000)]
    pub idle: usize,
    /// Seconds of 1:1 traffic at 1,000 msg/s (in the latency scenario: per system and round).
    #[arg(long, default_value_t = 3)]
    pub latency_secs: u64,
    /// Rounds of the latency scenario, each the multi-process system then the baselines.
    #[arg(long, default_value_t = 5)]
    pub latency_rounds: usize,
    /// The `ngircd` for the `peer` scenario, ngircd on the fan-out and 1:1 workloads (default:
    /// `ngircd` on PATH, or /usr/sbin/ngircd).
    #[arg(long)]
    pub ngircd: Option<PathBuf>,
    /// Restarts measured per restart scenario.
    #[arg(long, default_value_t = 10)]
    pub restarts: usize,
    /// Clients of the frontend killed and restarted in the handoff scenario.
    #[arg(long, default_value_t = 5000)]
    pub handoff_clients: usize,
    /// Scenarios to run (default all): fanout, fanout-5000, burst, web-cpu, latency, idle,
    /// login-storm, frontend-restart, kernel-restart, handoff, start-stop, peer, cluster.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The chat-supervisor to measure (default: the one beside chat-bench).
    #[arg(long)]
    supervisor: Option<PathBuf>,
    /// The JSON an earlier chat-bench run printed: the report shows its figures beside these.
    #[arg(long)]
    before: Option<PathBuf>,
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
        /// Telnet frontends.
        #[arg(long, value_delimiter = ',')]
        addrs: Vec<SocketAddr>,
        /// Web frontends, for WebSocket clients.
        #[arg(long, value_delimiter = ',')]
        ws_addrs: Vec<SocketAddr>,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        prefix: String,
        /// Log in as a storm (batches at once) rather than steadily.
        #[arg(long)]
        storm: bool,
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
        Some(Cmd::Baseline { tcp, ws, .. }) => runtime.block_on(baseline::serve(tcp, ws)),
        Some(Cmd::Hold {
            addrs,
            ws_addrs,
            count,
            prefix,
            storm,
        }) => runtime.block_on(scenarios::idle::hold(addrs, ws_addrs, count, prefix, storm)),
        None => {
            // Read first: a bad file should fail the run before it starts, not after.
            let before = cli.run.before.as_deref().map(read_figures).transpose()?;
            if let Some(bin) = &cli.run.supervisor {
                system::use_supervisor(bin.clone())?;
            }
            let figures = runtime.block_on(run_all(cli.run.clone()))?;
            println!("{}", serde_json::to_string_pretty(&figures)?);
            if let Some(path) = &cli.run.report {
                std::fs::write(path, report::report(&figures, before.as_ref(), &cli.run.commit))?;
            }
            Ok(())
        }
    }
}

fn scenario(args: &RunArgs, name: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == name)
}

async fn run_all(args: RunArgs) -> Result<Value> {
    use scenarios::{fanout, idle, latency, restart, start_stop};
    let mut out = serde_json::Map::new();
    out.insert("machine".into(), machine());
    out.insert("commit".into(), json!(args.commit));
    if let Some(bin) = &args.supervisor {
        out.insert("supervisor".into(), json!(bin.display().to_string()));
    }
    if scenario(&args, "fanout") {
        let rate = |v: &Value| v["deliveries_per_sec"].as_f64().unwrap_or(0.0);
        let faster = move |a: &Value, b: &Value| rate(a) >= rate(b);
        out.insert("fanout".into(), compared(|s| fanout::run(&args, s), faster).await?);
    }
    if scenario(&args, "fanout-5000") {
        out.insert("fanout_5000".into(), scenarios::large_fanout::run(&args).await?);
    }
    if scenario(&args, "burst") {
        out.insert("burst".into(), scenarios::burst::run(&args).await?);
    }
    if scenario(&args, "web-cpu") {
        out.insert("web_cpu".into(), scenarios::web_cpu::run(&args).await?);
    }
    if scenario(&args, "latency") {
        out.insert("latency".into(), latency::rounds(&args).await?);
    }
    if scenario(&args, "idle") {
        out.insert(
            "idle".into(),
            idle::run(&args, System::multi(3, 1)?, idle::Login::Steady).await?,
        );
    }
    if scenario(&args, "login-storm") {
        let storm = idle::run(&args, System::multi(3, 1)?, idle::Login::Storm).await?;
        out.insert("login_storm".into(), storm);
    }
    if scenario(&args, "frontend-restart") {
        out.insert("frontend_restart".into(), restart::frontend(&args).await?);
    }
    if scenario(&args, "kernel-restart") {
        out.insert("kernel_restart".into(), restart::kernel(&args).await?);
    }
    if scenario(&args, "handoff") {
        out.insert("handoff".into(), scenarios::handoff::run(&args).await?);
    }
    if scenario(&args, "start-stop") {
        out.insert("start_stop".into(), start_stop::run(&args).await?);
    }
    if scenario(&args, "peer") {
        out.insert("peer".into(), scenarios::peer::run(&args).await?);
    }
    if scenario(&args, "cluster") {
        out.insert("cluster".into(), scenarios::cluster::run(&args).await?);
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
    let multi = run(System::multi(3, 1)?).await?;
    let single = run(System::baseline(3, 1, true)?).await?;
    let threaded = run(System::baseline(3, 1, false)?).await?;
    let base = if faster(&single, &threaded) { &single } else { &threaded };
    Ok(json!({"multi": multi, "baseline": base, "baseline_single_thread": single, "baseline_threaded": threaded}))
}

/// The figures an earlier run printed (`--before`).
fn read_figures(path: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not chat-bench's JSON", path.display()))
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
