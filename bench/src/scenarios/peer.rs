//! The peer: ngircd ([`crate::ngircd`]), an IRC server users know, on the workloads of
//! [`super::fanout`] and [`super::latency`] through IRC clients ([`crate::irc`]), for figures to
//! set beside ours; and what its deliveries cost it: CPU time, write calls, memory.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{fanout, latency, percentiles};
use crate::RunArgs;
use crate::clients::{Client, now_ns};
use crate::cpu::{cpu_seconds, write_syscalls};
use crate::irc;
use crate::ngircd::{self, Ngircd};

/// The channel every fan-out client joins.
const CHANNEL: &str = "#bench";

/// How long deliveries may stop before a fan-out counts what arrived. ngircd waits up to a second
/// for events when it has commands left over from a turn of its loop, so a pause of a second or
/// two is not an end.
const STALL: Duration = Duration::from_secs(5);

/// Both workloads on their own ngircd each; `{"installed": false}` when there is no ngircd.
pub async fn run(args: &RunArgs) -> Result<Value> {
    let Some(bin) = ngircd::find(args.ngircd.as_deref()) else {
        return Ok(json!({"installed": false}));
    };
    let version = ngircd::version(&bin)?;
    let fanout = fanout(args, Ngircd::start(&bin)?).await?;
    let latency = latency(args, Ngircd::start(&bin)?).await?;
    Ok(json!({"installed": true, "version": version, "fanout": fanout, "latency": latency}))
}

/// `senders` clients each send `messages` stamped `PRIVMSG #bench` lines as fast as they can;
/// every other one of `clients` in the channel receives every line (IRC does not echo a line to
/// its sender). ngircd's CPU time is read before and after.
async fn fanout(args: &RunArgs, server: Ngircd) -> Result<Value> {
    let clients = irc::crowd(server.addr, args.clients, "f", Some(CHANNEL), true).await?;
    // Let the JOIN broadcasts drain before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &clients {
        c.tally.reset();
    }
    let expected = (args.senders * args.messages * args.clients.saturating_sub(1)) as u64;
    let cpu_before = cpu_seconds(server.pid())?;
    let writes_before = write_syscalls(server.pid()).ok();
    let started = now_ns();
    let step = args.clients / args.senders.max(1);
    for s in 0..args.senders {
        let sender = clients[s * step].send.clone();
        for _ in 0..args.messages {
            let _ = sender.send(format!("PRIVMSG {CHANNEL} :t={}", now_ns()));
        }
    }
    // Until every line has arrived, or none has for a while (the server dropped a client).
    fanout::settle(&clients, expected, STALL).await;
    let cpu = cpu_seconds(server.pid())? - cpu_before;
    // Read by root, or by the user ngircd runs as; null otherwise.
    let writes = write_syscalls(server.pid()).ok().zip(writes_before).map(|(a, b)| a - b);
    let received = fanout::total(&clients);
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
    let disconnected = clients
        .iter()
        .filter(|c| c.tally.closed.load(Ordering::Relaxed))
        .count();
    let rss = chat_harness::rss_kib(server.pid());
    drop(clients);
    server.stop();
    Ok(json!({
        "clients": args.clients, "senders": args.senders, "messages": args.messages,
        "expected": expected, "received": received, "complete": received >= expected,
        "disconnected": disconnected,
        "seconds": seconds, "deliveries_per_sec": received as f64 / seconds,
        "latency": percentiles(samples), "rss_kib": {"ngircd": rss},
        "cpu_seconds": cpu, "cpu_seconds_per_million_deliveries": cpu / received.max(1) as f64 * 1e6,
        "write_syscalls": writes,
    }))
}

/// Ten pairs of clients; 1,000 stamped `PRIVMSG` lines a second in all, one every millisecond.
async fn latency(args: &RunArgs, server: Ngircd) -> Result<Value> {
    let mut senders: Vec<Client> = Vec::new();
    let mut receivers: Vec<Client> = Vec::new();
    for i in 0..10 {
        senders.push(irc::login(server.addr, &format!("s{i}"), None, false).await?);
        receivers.push(irc::login(server.addr, &format!("r{i}"), None, true).await?);
    }
    let (got, samples) =
        latency::one_to_one(args, &senders, &receivers, |i| format!("PRIVMSG r{i} :t={}", now_ns())).await;
    drop((senders, receivers));
    server.stop();
    Ok(latency::figures(args.latency_secs * 1000, got, samples))
}
