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
//!   latency), 1:1 latency across frontends at a fixed rate, idle scale (RSS per logged-in
//!   connection), frontend and kernel restart gaps under load, and start/stop times.
//! - [`report`]: the figures as BENCHMARKS.md (pure).
//!
//! `chat-supervisor` is expected beside this binary: `cargo build --release --workspace --bins`.

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

use anyhow::Result;
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
    /// Clients in the fan-out scenario, spread over 3 telnet and 1 web frontend.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    #[arg(long, default_value_t = 20)]
    pub senders: usize,
    /// `msgall` lines per sender.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Logged-in connections held in the idle scenario.
    #[arg(long, default_value_t = 20_000)]
    pub idle: usize,
    /// Seconds of 1:1 traffic at 1,000 msg/s.
    #[arg(long, default_value_t = 5)]
    pub latency_secs: u64,
    /// The `ngircd` for the `peer` scenario, ngircd on the fan-out and 1:1 workloads (default:
    /// `ngircd` on PATH, or /usr/sbin/ngircd).
    #[arg(long)]
    pub ngircd: Option<PathBuf>,
    /// Restarts measured per restart scenario.
    #[arg(long, default_value_t = 10)]
    pub restarts: usize,
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
        Some(Cmd::Baseline { tcp, ws, .. }) => runtime.block_on(baseline::serve(tcp, ws)),
        Some(Cmd::Hold { addrs, count, prefix }) => runtime.block_on(scenarios::idle::hold(addrs, count, prefix)),
        None => {
            let figures = runtime.block_on(run_all(cli.run.clone()))?;
            println!("{}", serde_json::to_string_pretty(&figures)?);
            if let Some(path) = &cli.run.report {
                std::fs::write(path, report::report(&figures, &cli.run.commit))?;
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
    if scenario(&args, "fanout") {
        let rate = |v: &Value| v["deliveries_per_sec"].as_f64().unwrap_or(0.0);
        let faster = move |a: &Value, b: &Value| rate(a) >= rate(b);
        out.insert("fanout".into(), compared(|s| fanout::run(&args, s), faster).await?);
    }
    if scenario(&args, "latency") {
        let p99 = |v: &Value| v["latency"]["p99_us"].as_u64().unwrap_or(u64::MAX);
        let faster = move |a: &Value, b: &Value| p99(a) <= p99(b);
        out.insert("latency".into(), compared(|s| latency::run(&args, s), faster).await?);
    }
    if scenario(&args, "idle") {
        out.insert("idle".into(), idle::run(&args, System::multi(3, 1)?).await?);
    }
    if scenario(&args, "frontend-restart") {
        out.insert("frontend_restart".into(), restart::frontend(&args).await?);
    }
    if scenario(&args, "kernel-restart") {
        out.insert("kernel_restart".into(), restart::kernel(&args).await?);
    }
    if scenario(&args, "start-stop") {
        out.insert("start_stop".into(), start_stop::run(&args).await?);
    }
    if scenario(&args, "peer") {
        out.insert("peer".into(), scenarios::peer::run(&args).await?);
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
