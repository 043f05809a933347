//! Many hosts on one Redis (`[cluster]`): the fan-out and 1:1 loads of [`fanout`] and [`latency`]
//! on three nodes sharing one Redis of our own, against the same loads on one host without a
//! cluster, measured in interleaved rounds. Also Redis's share of the CPU and the Redis commands
//! each chat event costs (every script, every stream read, every heartbeat, over the `msgall`s
//! and `msg`s sent), the round trips the hosts make (scripts, stream reads) apart from the commands
//! those scripts run.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::{fanout, latency};
use crate::RunArgs;
use crate::system::System;

/// Nodes of the cluster measured.
const NODES: usize = 3;

pub async fn run(args: &RunArgs) -> Result<Value> {
    let mut rounds = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let single = fanout::run(args, System::multi(NODES, 1)?).await?;
        let cluster = with_redis(System::cluster(NODES)?, |system| async move {
            let addrs = system.addrs();
            let figures = fanout::measure(&system, &addrs, fanout::Load::of(args), true, None).await?;
            Ok((system, figures))
        })
        .await?;
        rounds.push(json!({"single": single, "cluster": cluster}));
    }
    let single_latency = latency::run(args, System::multi(NODES, 1)?).await?;
    let cluster_latency = with_redis(System::cluster(NODES)?, |system| async move {
        let figures = latency::measure(args, &system).await?;
        Ok((system, figures))
    })
    .await?;
    Ok(json!({
        "nodes": NODES,
        "fanout_rounds": rounds,
        "latency": {"single": single_latency, "cluster": cluster_latency},
    }))
}

/// Runs `load` on a cluster, with what its Redis spent meanwhile: CPU seconds and commands,
/// added to the figures as `redis_cpu_seconds`, `redis_commands` and `redis_cpu_share` (of every
/// process's CPU, Redis's included); then stops it.
async fn with_redis<F, Fut>(system: System, load: F) -> Result<Value>
where
    F: FnOnce(System) -> Fut,
    Fut: std::future::Future<Output = Result<(System, Value)>>,
{
    let redis = |s: &System| -> Result<(f64, u64, std::collections::BTreeMap<String, u64>)> {
        let redis = s.redis().context("a cluster has a Redis")?;
        Ok((
            crate::cpu::cpu_seconds(redis.pid().context("Redis is running")?)?,
            redis.info("stats", "total_commands_processed")?,
            redis.calls()?,
        ))
    };
    let before = redis(&system)?;
    let (system, mut figures) = load(system).await?;
    let after = redis(&system)?;
    let cpu = after.0 - before.0;
    let commands = after.1 - before.1;
    let calls = |name: &str| after.2.get(name).copied().unwrap_or(0) - before.2.get(name).copied().unwrap_or(0);
    if let Some(object) = figures.as_object_mut() {
        object.insert("redis_cpu_seconds".into(), json!(cpu));
        object.insert("redis_commands".into(), json!(commands));
        object.insert("redis_scripts".into(), json!(calls("evalsha")));
        object.insert("redis_stream_reads".into(), json!(calls("xread")));
        if let Some(total) = object.get("cpu_seconds").and_then(Value::as_f64).filter(|t| *t > 0.0) {
            object.insert("redis_cpu_share".into(), json!(cpu / total));
        }
    }
    system.stop();
    Ok(figures)
}
