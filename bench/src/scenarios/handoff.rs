//! A frontend holding 5,000 clients is killed (`kill -9`), then restarted (`restart NAME`),
//! while a user of another frontend sends a stamped `msgall` every few milliseconds: clients
//! disconnected, lines lost or twice, the longest a line took to arrive, and the supervisor's
//! memory per parked connection (issue 12). The pause a client saw is the largest jump in delivery
//! time between two consecutive lines of one client (the lines go out at a steady pace); the same
//! traffic with nothing killed comes first, for reference: a line to 5,000 clients of one process
//! takes a while to reach the last of them anyway.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{percentiles, wait_until};
use crate::RunArgs;
use crate::clients::{Client, crowd, now_ns};
use crate::system::System;

/// A stamped line every this long while a process changes.
const EVERY: Duration = Duration::from_millis(50);
/// Lines sent around each event: half before it, half after.
const LINES: usize = 40;

pub async fn run(args: &RunArgs) -> Result<Value> {
    let mut system = System::multi(2, 0)?;
    let (victim, other) = (system.tcp[0], system.tcp[1]);
    let supervisor_before = system.rss_kib()?.get("supervisor").copied().unwrap_or(0);
    let clients = crowd(&[(victim, false)], args.handoff_clients, "h", true).await?;
    let sender = Client::login(other, false, "sender", false).await?;
    // Every client's copy is parked by now (parks go out as the clients connect).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let supervisor_after = system.rss_kib()?.get("supervisor").copied().unwrap_or(0);
    let per_parked = (supervisor_after.saturating_sub(supervisor_before)) as f64 / clients.len() as f64;

    let mut events = serde_json::Map::new();
    for event in ["steady", "kill", "restart"] {
        for c in &clients {
            c.tally.reset();
        }
        let pid = system.up()?.children()?["s0"];
        let mut sent = 0u64;
        let started = Instant::now();
        for i in 0..LINES {
            if i == LINES / 2 {
                match event {
                    "kill" => kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?,
                    "restart" => {
                        // The command waits for the restart: off this worker, so the clients'
                        // readers keep both threads of the load generator meanwhile.
                        let up = system.up()?;
                        let out = tokio::task::block_in_place(|| up.cli(&["restart", "s0"]))?;
                        anyhow::ensure!(out.status.success(), "restart s0: {out:?}");
                    }
                    _ => {}
                }
            }
            sender.say(format!("msgall t={}", now_ns()));
            sent += 1;
            tokio::time::sleep_until((started + EVERY * (i as u32 + 1)).into()).await;
        }
        if event != "steady" {
            system.up()?.wait_for("listening name=s0 ").context("the new s0")?;
        }
        let expected = sent * clients.len() as u64;
        let received = || {
            clients
                .iter()
                .map(|c| c.tally.count.load(Ordering::Relaxed))
                .sum::<u64>()
        };
        wait_until(Duration::from_secs(15), || received() >= expected).await;
        let received = received();
        let disconnected = clients
            .iter()
            .filter(|c| c.tally.closed.load(Ordering::Relaxed))
            .count();
        let mut latencies = Vec::new();
        let mut short = 0;
        let mut jump = 0u32;
        for c in &clients {
            let got = c.tally.count.load(Ordering::Relaxed);
            short += usize::from(got < sent);
            let mine: Vec<u32> = c.tally.latencies.lock().unwrap().drain(..).collect();
            let biggest = mine.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(0);
            jump = jump.max(biggest);
            latencies.extend(mine);
        }
        eprintln!("handoff {event}: {received} of {expected} deliveries, {disconnected} disconnected");
        events.insert(
            event.into(),
            json!({
                "sent": sent, "expected": expected, "received": received,
                "lost": expected.saturating_sub(received), "duplicated": received.saturating_sub(expected),
                "clients_short": short, "disconnected": disconnected,
                "delivery": percentiles(latencies), "pause_us": jump,
            }),
        );
    }
    drop((clients, sender));
    system.stop();
    Ok(json!({
        "clients": args.handoff_clients, "line_every_ms": EVERY.as_millis() as u64,
        "supervisor_rss_kib": {"before": supervisor_before, "after": supervisor_after},
        "supervisor_kib_per_parked_connection": per_parked,
        "events": events,
    }))
}
