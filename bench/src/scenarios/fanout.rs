//! Fan-out: `senders` clients each send `messages` stamped `msgall` lines at once to `clients`
//! logged-in clients; deliveries per second and delivery latency. The other fan-out scenarios
//! (`fanout-5000`, `burst`, `web-cpu`) are this one at other sizes, through [`measure`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use super::percentiles;
use crate::RunArgs;
use crate::clients::{Client, crowd, now_ns};
use crate::cpu;
use crate::system::System;

/// How long deliveries may stop coming before a fan-out is given up as incomplete.
const STALL: Duration = Duration::from_secs(15);

/// The size of a fan-out.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub senders: usize,
    /// `msgall` lines per sender.
    pub messages: usize,
    /// Bytes of filler after each line's stamp, for a given size a delivery.
    pub pad: usize,
}

impl Load {
    /// The fan-out of the command line: `--clients`, `--senders`, `--messages`.
    pub fn of(args: &RunArgs) -> Self {
        Self {
            clients: args.clients,
            senders: args.senders,
            messages: args.messages,
            pad: 0,
        }
    }
}

/// `senders` clients each send `messages` stamped `msgall` lines as fast as they can; every one
/// of `clients` receives every line.
pub async fn run(args: &RunArgs, system: System) -> Result<Value> {
    let addrs = system.addrs();
    let figures = measure(&system, &addrs, Load::of(args), true, None).await?;
    system.stop();
    Ok(figures)
}

/// Logs `load.clients` clients in round-robin over `addrs`, lets the login broadcasts drain, then
/// has every sender send all its lines at once; waits until every client has every line, or
/// deliveries stop coming for [`STALL`]. With `record`, delivery latencies too; with `watched`,
/// the CPU seconds and write system calls that process spent from the first line sent to the last
/// delivered.
pub async fn measure(
    system: &System,
    addrs: &[(SocketAddr, bool)],
    load: Load,
    record: bool,
    watched: Option<u32>,
) -> Result<Value> {
    let clients = crowd(addrs, load.clients, "f", record).await?;
    // Let the login broadcasts drain before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &clients {
        c.tally.reset();
    }
    let expected = (load.senders * load.messages * load.clients) as u64;
    let spent_before = watched.map(spent).transpose()?;
    let system_before = system_cpu(system)?;
    let started = now_ns();
    let step = load.clients / load.senders.max(1);
    let pad = if load.pad > 0 {
        format!(" {}", "x".repeat(load.pad))
    } else {
        String::new()
    };
    for s in 0..load.senders {
        let sender = clients[s * step].send.clone();
        // All at once: how fast the lines go out must not depend on how busy this process is.
        for _ in 0..load.messages {
            let _ = sender.send(format!("msgall t={}{pad}", now_ns()));
        }
    }
    let complete = settle(&clients, expected, STALL).await;
    let spent_after = watched.map(spent).transpose()?;
    let system_cpu_seconds = system_cpu(system)? - system_before;
    let received = total(&clients);
    let last = clients
        .iter()
        .map(|c| c.tally.last_ns.load(Ordering::Relaxed))
        .max()
        .unwrap_or(started);
    let seconds = (last.saturating_sub(started)) as f64 / 1e9;
    let mut samples = Vec::with_capacity(if record { received as usize } else { 0 });
    for c in &clients {
        samples.append(&mut c.tally.latencies.lock().unwrap());
    }
    // Where deliveries went missing, if any: how many clients are short, and the worst off.
    let each = (load.senders * load.messages) as u64;
    let counts: Vec<u64> = clients.iter().map(|c| c.tally.count.load(Ordering::Relaxed)).collect();
    let short = counts.iter().filter(|n| **n < each).count();
    let least = counts.iter().copied().min().unwrap_or(0);
    let closed = clients
        .iter()
        .filter(|c| c.tally.closed.load(Ordering::Relaxed))
        .count();
    // Per kind: a web frame (JSON with the line as HTML and as text) is larger than a telnet line.
    let bytes_per_client = |web: bool| {
        let (mut bytes, mut count) = (0, 0);
        for (i, c) in clients.iter().enumerate() {
            if addrs[i % addrs.len()].1 == web {
                bytes += c.tally.bytes.load(Ordering::Relaxed);
                count += 1;
            }
        }
        (count > 0).then(|| bytes / count)
    };
    let bytes = (bytes_per_client(false), bytes_per_client(true));
    let rss = system.rss_kib()?;
    drop(clients);
    let mut figures = json!({
        "clients": load.clients, "senders": load.senders, "messages": load.messages,
        "expected": expected, "received": received, "lost": expected.saturating_sub(received),
        "closed": closed, "complete": complete, "clients_short": short, "least_received_by_a_client": least,
        "bytes_per_telnet_client": bytes.0, "bytes_per_web_client": bytes.1,
        "seconds": seconds, "deliveries_per_sec": received as f64 / seconds,
        "latency": percentiles(samples), "rss_kib": rss,
        "cpu_seconds": system_cpu_seconds,
        "cpu_seconds_per_million": system_cpu_seconds * 1e6 / received.max(1) as f64,
    });
    if let (Some(pid), Some((cpu_before, writes_before)), Some((cpu_after, writes_after))) =
        (watched, spent_before, spent_after)
    {
        figures["watched"] = json!({
            "pid": pid, "cpu_seconds": cpu_after - cpu_before,
            "write_syscalls": writes_after.saturating_sub(writes_before),
        });
    }
    Ok(figures)
}

/// Stamped lines received by all `clients` so far.
pub fn total(clients: &[Client]) -> u64 {
    clients.iter().map(|c| c.tally.count.load(Ordering::Relaxed)).sum()
}

/// Waits until `clients` received `expected` lines (true), or none came for `stall` (false).
pub async fn settle(clients: &[Client], expected: u64, stall: Duration) -> bool {
    let mut seen = 0;
    let mut moved = Instant::now();
    loop {
        let now = total(clients);
        if now >= expected {
            return true;
        }
        if now > seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() > stall {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// CPU seconds the system's processes (all of them, or the baseline) have used so far.
fn system_cpu(system: &System) -> Result<f64> {
    system.pids()?.into_iter().map(cpu::cpu_seconds).sum()
}

/// CPU seconds and write system calls of `pid` so far.
fn spent(pid: u32) -> Result<(f64, u64)> {
    Ok((cpu::cpu_seconds(pid)?, cpu::write_syscalls(pid)?))
}
