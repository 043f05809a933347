//! 1:1 latency: ten pairs of clients on different frontends, 1,000 `msg` lines a second in all.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{percentiles, wait_until};
use crate::RunArgs;
use crate::clients::{Client, now_ns};
use crate::system::System;

/// Ten pairs across frontends; 1,000 stamped `msg` lines a second in all, one every millisecond.
pub async fn run(args: &RunArgs, system: System) -> Result<Value> {
    let figures = measure(args, &system).await;
    system.stop();
    figures
}

/// [`run`], leaving the system running.
pub async fn measure(args: &RunArgs, system: &System) -> Result<Value> {
    let addrs = system.addrs();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..10 {
        let (a, a_ws) = addrs[i % addrs.len()];
        let (b, b_ws) = addrs[(i + 1) % addrs.len()];
        senders.push(Client::login(a, a_ws, &format!("s{i}"), false).await?);
        receivers.push(Client::login(b, b_ws, &format!("r{i}"), true).await?);
    }
    let (got, samples) = one_to_one(args, &senders, &receivers, |i| format!("msg r{i} t={}", now_ns())).await;
    Ok(
        json!({"rate_per_sec": 1000, "sent": args.latency_secs * 1000, "received": got, "latency": percentiles(samples)}),
    )
}

/// Once the login broadcasts are in: one line every millisecond for `--latency-secs`, sender
/// `i % 10` to receiver `i % 10` (`line(i)`, stamped); what arrived, and the latencies.
pub async fn one_to_one(
    args: &RunArgs,
    senders: &[Client],
    receivers: &[Client],
    line: impl Fn(usize) -> String,
) -> (u64, Vec<u32>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    for r in receivers {
        r.tally.reset();
    }
    let total = args.latency_secs * 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0..total {
        tick.tick().await;
        let i = (n % 10) as usize;
        senders[i].say(line(i));
    }
    let received = || {
        receivers
            .iter()
            .map(|r| r.tally.count.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    wait_until(Duration::from_secs(10), || received() >= total).await;
    let mut samples = Vec::new();
    for r in receivers {
        samples.append(&mut r.tally.latencies.lock().unwrap());
    }
    (received(), samples)
}
