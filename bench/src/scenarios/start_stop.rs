//! Start and stop: `up` until every port accepts, and `down` until no process is left.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chat_harness::exited;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::{percentiles, wait_until};
use crate::RunArgs;
use crate::system::System;

/// `up` until every port accepts, and `down` until no process is left; `restarts` times.
pub async fn run(args: &RunArgs) -> Result<Value> {
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for _ in 0..args.restarts {
        let started = Instant::now();
        let mut system = System::multi(3, 1)?;
        for (addr, _) in system.addrs() {
            TcpStream::connect(addr).await?;
        }
        ups.push(started.elapsed().as_micros() as u32);
        let up = system.up()?;
        let mut pids: Vec<u32> = up.children()?.values().copied().collect();
        pids.push(up.proc.pid());
        let stopped = Instant::now();
        let down = up.cli(&["down"])?;
        if !down.status.success() {
            bail!("down failed: {}", String::from_utf8_lossy(&down.stderr));
        }
        wait_until(Duration::from_secs(10), || pids.iter().all(|p| exited(*p))).await;
        downs.push(stopped.elapsed().as_micros() as u32);
        drop(system);
    }
    Ok(json!({"up_to_all_ports_ready": percentiles(ups), "down_to_no_process": percentiles(downs)}))
}
