//! 1:1 latency: ten pairs of clients on different frontends, 1,000 `msg` lines a second in all,
//! on the multi-process system and on both baselines in turn, `--latency-rounds` times.
//!
//! A round takes each system `--latency-secs`. One system's latency drifts by tens of percent from
//! one minute to the next on a shared machine (the baseline's p50 ranged 96-150 us in five runs
//! of a minute each), so one run of each would let the moment decide the ratio: the rounds
//! interleave the three systems, and each one's percentiles are over its samples from every round.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{percentiles, wait_until};
use crate::RunArgs;
use crate::clients::{Client, now_ns};
use crate::system::System;

/// The systems of a round, in their order: the multi-process system, the one-thread baseline, the
/// all-cores baseline.
const SYSTEMS: [&str; 3] = ["multi", "baseline_single_thread", "baseline_threaded"];

/// `--latency-rounds` rounds of the three [`SYSTEMS`], each system's figures over all its samples;
/// the baseline is the one of the two with the lower p99. Each round's ratios are kept beside.
pub async fn rounds(args: &RunArgs) -> Result<Value> {
    let mut pooled: [Vec<u32>; 3] = Default::default();
    let mut received = [0u64; 3];
    let mut rounds = Vec::new();
    for round in 0..args.latency_rounds {
        let mut figures = Vec::new();
        for (i, pool) in pooled.iter_mut().enumerate() {
            let system = match i {
                0 => System::multi(3, 1)?,
                i => System::baseline(3, 1, i == 1)?,
            };
            let measured = samples(args, &system).await;
            system.stop();
            let (got, mut samples) = measured?;
            received[i] += got;
            figures.push(percentiles(samples.clone()));
            pool.append(&mut samples);
        }
        let p = |i: usize, key: &str| figures[i][key].as_f64().unwrap_or(f64::NAN);
        let base = if p(1, "p99_us") <= p(2, "p99_us") { 1 } else { 2 };
        let (p50, p99) = (p(0, "p50_us") / p(base, "p50_us"), p(0, "p99_us") / p(base, "p99_us"));
        eprintln!(
            "latency round {}: p50 {p50:.2}x, p99 {p99:.2}x the {}",
            round + 1,
            SYSTEMS[base]
        );
        rounds.push(json!({
            "multi": figures[0], "baseline_single_thread": figures[1], "baseline_threaded": figures[2],
            "baseline": SYSTEMS[base], "p50_ratio": p50, "p99_ratio": p99,
        }));
    }
    let sent = args.latency_secs * 1000 * args.latency_rounds as u64;
    let mut out = serde_json::Map::new();
    for (i, pool) in pooled.into_iter().enumerate() {
        out.insert(SYSTEMS[i].into(), figures(sent, received[i], pool));
    }
    let p99 = |key: &str| out[key]["latency"]["p99_us"].as_u64().unwrap_or(u64::MAX);
    let base = if p99(SYSTEMS[1]) <= p99(SYSTEMS[2]) {
        SYSTEMS[1]
    } else {
        SYSTEMS[2]
    };
    out.insert("baseline".into(), out[base].clone());
    out.insert("baseline_is".into(), json!(base));
    out.insert("rounds".into(), json!(rounds));
    out.insert("round_secs".into(), json!(args.latency_secs));
    Ok(Value::Object(out))
}

/// Ten pairs across frontends; 1,000 stamped `msg` lines a second in all, one every millisecond.
pub async fn run(args: &RunArgs, system: System) -> Result<Value> {
    let figures = measure(args, &system).await;
    system.stop();
    figures
}

/// [`run`], leaving the system running.
pub async fn measure(args: &RunArgs, system: &System) -> Result<Value> {
    let (got, samples) = samples(args, system).await?;
    Ok(figures(args.latency_secs * 1000, got, samples))
}

/// What a 1:1 run reports: the lines sent (one a millisecond) and received, and their latencies.
pub fn figures(sent: u64, received: u64, samples: Vec<u32>) -> Value {
    json!({"rate_per_sec": 1000, "sent": sent, "received": received, "latency": percentiles(samples)})
}

/// [`measure`]'s deliveries and latencies, unsummarised.
async fn samples(args: &RunArgs, system: &System) -> Result<(u64, Vec<u32>)> {
    let addrs = system.addrs();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..10 {
        let (a, a_ws) = addrs[i % addrs.len()];
        let (b, b_ws) = addrs[(i + 1) % addrs.len()];
        senders.push(Client::login(a, a_ws, &format!("s{i}"), false).await?);
        receivers.push(Client::login(b, b_ws, &format!("r{i}"), true).await?);
    }
    Ok(one_to_one(args, &senders, &receivers, |i| format!("msg r{i} t={}", now_ns())).await)
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
