//! Fan-out at 5,000 clients (`fanout-5000`): the fan-out at `--large-clients` over 3 telnet and 1
//! web frontend, on the multi-process system and on both baselines in turn, `--rounds` times, so
//! that one lucky or unlucky run does not decide the ratio: every round's ratio and the smallest.

use anyhow::Result;
use serde_json::{Value, json};

use super::fanout::{Load, measure};
use crate::RunArgs;
use crate::system::System;

/// `rounds` rounds of: the multi-process system, the one-thread baseline, the all-cores baseline;
/// each round's ratio is against the faster of its two baselines.
pub async fn run(args: &RunArgs) -> Result<Value> {
    let load = Load {
        clients: args.large_clients,
        ..Load::of(args)
    };
    let rate = |v: &Value| v["deliveries_per_sec"].as_f64().unwrap_or(0.0);
    let mut rounds = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        let multi = once(System::multi(3, 1)?, load).await?;
        let single = once(System::baseline(3, 1, true)?, load).await?;
        let threaded = once(System::baseline(3, 1, false)?, load).await?;
        let (baseline, base) = if rate(&single) >= rate(&threaded) {
            ("single_thread", &single)
        } else {
            ("threaded", &threaded)
        };
        let ratio = rate(&multi) / rate(base);
        eprintln!("fanout-5000 round {}: {ratio:.2}x the {baseline} baseline", round + 1);
        ratios.push(ratio);
        rounds.push(json!({
            "multi": multi, "baseline_single_thread": single, "baseline_threaded": threaded,
            "baseline": baseline, "ratio": ratio,
        }));
    }
    let lost: u64 = rounds.iter().map(|r| r["multi"]["lost"].as_u64().unwrap_or(0)).sum();
    Ok(json!({
        "clients": load.clients, "senders": load.senders, "messages": load.messages,
        "rounds": rounds, "ratios": ratios,
        "min_ratio": ratios.iter().copied().reduce(f64::min),
        "multi_lost": lost,
    }))
}

async fn once(system: System, load: Load) -> Result<Value> {
    let addrs = system.addrs();
    let figures = measure(&system, &addrs, load, false, None).await?;
    system.stop();
    Ok(figures)
}
