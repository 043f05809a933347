//! Restarts under load: `kill -9` of a telnet frontend under a loop of connection attempts, and
//! of the kernel while clients chat.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{percentiles, wait_until};
use crate::RunArgs;
use crate::clients::{crowd, now_ns};
use crate::system::System;

/// `kill -9` of a telnet frontend under a loop of connection attempts, `restarts` times: refused
/// attempts, and the time from the kill to its new `listening` line.
pub async fn frontend(args: &RunArgs) -> Result<Value> {
    let mut system = System::multi(3, 1)?;
    let addr = system.tcp[0];
    let mut gaps = Vec::new();
    let refused = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (refused, attempts, stop) = (refused.clone(), attempts.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                attempts.fetch_add(1, Ordering::Relaxed);
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    for _ in 0..args.restarts {
        let pid = system.up()?.children()?["s0"];
        // Past the supervisor's 1 s "started" mark, so each restart is a first one.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let killed = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
        system.up()?.wait_for("listening name=s0 ")?;
        gaps.push(killed.elapsed().as_micros() as u32);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = hammer.join();
    system.stop();
    Ok(json!({
        "restarts": args.restarts, "connection_attempts": attempts.load(Ordering::Relaxed),
        "refused": refused.load(Ordering::Relaxed), "kill_to_listening": percentiles(gaps),
    }))
}

/// `kill -9` of the kernel while clients chat, `restarts` times: lost messages, disconnected
/// clients, and how long until a message sent right after the kill arrives.
pub async fn kernel(args: &RunArgs) -> Result<Value> {
    let mut system = System::multi(3, 1)?;
    let addrs = system.addrs();
    let clients = crowd(&addrs, 100, "k", true).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut gaps = Vec::new();
    let mut sent = 0u64;
    let receiver = &clients[1];
    for round in 0..args.restarts {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // Traffic before, across and after the kill: a private line every millisecond.
        let kernel = system.up()?.children()?["kernel"];
        for i in 0..50 {
            clients[(i % 50) * 2].say(format!("msg k1 t={}", now_ns()));
            sent += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = receiver.tally.count.load(Ordering::Relaxed);
        let killed = Instant::now();
        kill(Pid::from_raw(kernel as i32), Signal::SIGKILL)?;
        clients[0].say(format!("msg k1 t={}", now_ns()));
        sent += 1;
        let flowing = wait_until(Duration::from_secs(10), || {
            receiver.tally.count.load(Ordering::Relaxed) > before
        })
        .await;
        if flowing {
            gaps.push(killed.elapsed().as_micros() as u32);
        }
        for i in 0..50 {
            clients[(i % 49) * 2 + 2].say(format!("msg k1 t={}", now_ns()));
            sent += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        system.up()?.wait_for("ready name=kernel")?;
        eprintln!("kernel restart {round}: flowing again after {:?}", gaps.last());
    }
    wait_until(Duration::from_secs(10), || {
        receiver.tally.count.load(Ordering::Relaxed) >= sent
    })
    .await;
    let received = receiver.tally.count.load(Ordering::Relaxed);
    let disconnected = clients
        .iter()
        .filter(|c| c.tally.closed.load(Ordering::Relaxed))
        .count();
    drop(clients);
    system.stop();
    Ok(json!({
        "restarts": args.restarts, "clients": 100, "sent": sent, "received": received,
        "lost": sent.saturating_sub(received), "duplicated": received.saturating_sub(sent),
        "disconnected": disconnected, "kill_to_flowing": percentiles(gaps),
    }))
}
