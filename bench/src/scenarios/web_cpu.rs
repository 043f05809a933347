//! Web against telnet (`web-cpu`): the fan-out run twice on the multi-process system, once with
//! every client on the web frontend and once with every client on one telnet frontend; the CPU
//! seconds that frontend spent per million deliveries, and its write system calls per delivery
//! (below 1 when queued lines leave in one write).

use anyhow::Result;
use serde_json::{Value, json};

use super::fanout::{Load, measure};
use crate::RunArgs;
use crate::cpu;
use crate::system::System;

/// The fan-out of `--clients`, `--senders` and `--messages`, all on the web frontend, then all on
/// the first telnet one.
pub async fn run(args: &RunArgs) -> Result<Value> {
    let load = Load::of(args);
    let web = on_one(load, true).await?;
    let telnet = on_one(load, false).await?;
    let per_million = |v: &Value| v["cpu_seconds_per_million"].as_f64();
    let ratio = per_million(&web).zip(per_million(&telnet)).map(|(w, t)| w / t);
    Ok(json!({
        "clock_ticks_per_sec": cpu::clock_ticks(), "web": web, "telnet": telnet, "cpu_ratio": ratio,
    }))
}

/// The fan-out with every client on one frontend of a fresh system, that frontend watched.
async fn on_one(load: Load, ws: bool) -> Result<Value> {
    let system = System::multi(3, 1)?;
    let i = if ws { system.tcp.len() } else { 0 };
    let addrs = [system.addrs()[i]];
    let pid = system.frontend_pid(i)?;
    let mut figures = measure(&system, &addrs, load, false, Some(pid)).await?;
    system.stop();
    let deliveries = figures["received"].as_f64().unwrap_or(0.0);
    let watched = &figures["watched"];
    let per_million = watched["cpu_seconds"].as_f64().map(|s| s / deliveries * 1e6);
    let writes = watched["write_syscalls"].as_f64().map(|w| w / deliveries);
    figures["cpu_seconds_per_million"] = json!(per_million);
    figures["write_syscalls_per_delivery"] = json!(writes);
    Ok(figures)
}
