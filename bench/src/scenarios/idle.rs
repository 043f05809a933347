//! Idle scale: many logged-in connections doing nothing; RSS per connection over all processes.
//! Half the connections come from a helper process (`chat-bench hold`), past one process's file
//! limit.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::RunArgs;
use crate::clients::crowd;
use crate::system::System;

/// `idle` logged-in connections over the frontends; RSS of every process once all are in.
pub async fn run(args: &RunArgs, system: System) -> Result<Value> {
    let addrs = system.addrs();
    let before = system.rss_kib()?;
    // One process may hold 20,000 files at most: a helper holds half.
    let here = args.idle / 2;
    let tcp: Vec<String> = system.tcp.iter().map(|a| a.to_string()).collect();
    let mut helper = Command::new(std::env::current_exe()?)
        .args([
            "hold",
            "--addrs",
            &tcp.join(","),
            "--count",
            &(args.idle - here).to_string(),
            "--prefix",
            "h",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    let clients = crowd(&addrs, here, "i", false).await?;
    let mut line = String::new();
    {
        let stdout = helper.stdout.take().expect("piped");
        let mut reader = std::io::BufReader::new(stdout);
        std::io::BufRead::read_line(&mut reader, &mut line)?;
    }
    if !line.starts_with("held") {
        bail!("the helper failed: {line:?}");
    }
    let logged_in = started.elapsed();
    // Held idle for a few seconds: every login broadcast delivered, freed memory handed back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = system.rss_kib()?;
    let total_before: u64 = before.values().sum();
    let total_after: u64 = after.values().sum();
    let alive = clients
        .iter()
        .filter(|c| !c.tally.closed.load(Ordering::Relaxed))
        .count();
    let _ = helper.kill();
    let _ = helper.wait();
    drop(clients);
    system.stop();
    Ok(json!({
        "connections": args.idle, "alive_here": alive, "login_seconds": logged_in.as_secs_f64(),
        "rss_kib_before": before, "rss_kib_after": after,
        "total_kib": total_after, "per_connection_kib": (total_after.saturating_sub(total_before)) as f64 / args.idle as f64,
        "per_connection_kib_including_empty": total_after as f64 / args.idle as f64,
    }))
}

/// `chat-bench hold`: logs in `count` telnet clients over `addrs` and holds them, idle, until
/// killed; says `held N` once all are in.
pub async fn hold(addrs: Vec<SocketAddr>, count: usize, prefix: String) -> Result<()> {
    let addrs: Vec<(SocketAddr, bool)> = addrs.into_iter().map(|a| (a, false)).collect();
    let clients = crowd(&addrs, count, &prefix, false).await?;
    println!("held {}", clients.len());
    std::future::pending::<()>().await;
    Ok(())
}
