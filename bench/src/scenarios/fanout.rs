//! Fan-out: `senders` clients each send `messages` stamped `msgall` lines at once to `clients`
//! logged-in clients; deliveries per second and delivery latency.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{percentiles, wait_until};
use crate::RunArgs;
use crate::clients::{crowd, now_ns};
use crate::system::System;

/// `senders` clients each send `messages` stamped `msgall` lines as fast as they can; every one
/// of `clients` receives every line.
pub async fn run(args: &RunArgs, system: System) -> Result<Value> {
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
