//! Idle scale: many logged-in connections doing nothing, spread round-robin over every frontend
//! (WebSocket clients on the web one); the whole system's RSS per connection, and each frontend's
//! growth per connection it holds. The same after a login storm (`login-storm`). Past what one
//! process may hold, a helper process (`chat-bench hold`) holds the rest, spread the same way.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use crate::RunArgs;
use crate::clients::{Client, crowd, spread, storm};
use crate::system::System;

/// Connections this process holds at most (it may hold 20,000 files); a helper holds the rest.
const HERE: usize = 15_000;

/// Logins in flight at once.
pub const BATCH: usize = 200;

/// How the clients log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// [`BATCH`] logins in flight, the next starting as soon as one is in.
    Steady,
    /// A storm: [`BATCH`] connections opened at once, then their logins sent at the same moment;
    /// the next batch as soon as that whole one is in.
    Storm,
}

impl Login {
    fn name(self) -> &'static str {
        match self {
            Login::Steady => "steady",
            Login::Storm => "storm",
        }
    }

    async fn clients(self, addrs: &[(SocketAddr, bool)], count: usize, prefix: &str) -> Result<Vec<Client>> {
        match self {
            Login::Steady => crowd(addrs, count, prefix, false).await,
            Login::Storm => storm(addrs, count, prefix, BATCH).await,
        }
    }
}

/// `idle` logged-in connections over every frontend; RSS of every process once all are in and
/// have idled a few seconds.
pub async fn run(args: &RunArgs, system: System, login: Login) -> Result<Value> {
    let addrs = system.addrs();
    let before = system.rss_kib()?;
    let here = args.idle.min(HERE);
    let rest = args.idle - here;
    let started = Instant::now();
    let mut helper = if rest > 0 {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["hold", "--count", &rest.to_string(), "--prefix", "h"]);
        for (addr, ws) in &addrs {
            command.args([if *ws { "--ws-addrs" } else { "--addrs" }, &addr.to_string()]);
        }
        if login == Login::Storm {
            command.arg("--storm");
        }
        Some(Helper(command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?))
    } else {
        None
    };
    let clients = login.clients(&addrs, here, "i").await;
    if let Some(Helper(helper)) = &mut helper {
        let mut line = String::new();
        let stdout = helper.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        if !line.starts_with("held") {
            bail!("the helper failed: {line:?}");
        }
    }
    let logged_in = started.elapsed();
    let mut clients = clients?;
    // Held idle for a few seconds: every login broadcast delivered, freed memory handed back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = system.rss_kib()?;
    let pss: u64 = system.pss_kib()?.values().sum();
    let alive = clients
        .iter()
        .filter(|c| !c.tally.closed.load(Ordering::Relaxed))
        .count();
    drop(helper);
    clients.clear();
    system.stop();

    // Both halves are spread round-robin over the same list of frontends.
    let spread_here = spread(here, addrs.len());
    let spread_rest = spread(rest, addrs.len());
    let mut held_by = Map::new();
    let mut growth_by = Map::new();
    let (mut ws, mut telnet) = (Growth::default(), Growth::default());
    for (i, (_, is_ws)) in addrs.iter().enumerate() {
        let name = format!("s{i}");
        let connections = spread_here[i] + spread_rest[i];
        let grew = after
            .get(&name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(&name).copied().unwrap_or(0));
        held_by.insert(name.clone(), json!(connections));
        growth_by.insert(name, json!(grew as f64 / connections.max(1) as f64));
        let kind = if *is_ws { &mut ws } else { &mut telnet };
        kind.kib += grew;
        kind.connections += connections;
    }
    let total_before: u64 = before.values().sum();
    let total_after: u64 = after.values().sum();
    Ok(json!({
        "connections": args.idle, "login": login.name(), "login_batch": BATCH,
        "alive_here": alive, "login_seconds": logged_in.as_secs_f64(),
        "rss_kib_before": before, "rss_kib_after": after,
        "total_kib": total_after, "per_connection_kib": (total_after.saturating_sub(total_before)) as f64 / args.idle as f64,
        "per_connection_kib_including_empty": total_after as f64 / args.idle as f64,
        "pss_kib": pss, "per_connection_pss_kib_including_empty": pss as f64 / args.idle as f64,
        "connections_by_frontend": held_by, "per_connection_kib_by_frontend": growth_by,
        "websockets": ws.connections, "per_websocket_kib": ws.per_connection(),
        "telnet_connections": telnet.connections, "per_telnet_kib": telnet.per_connection(),
    }))
}

/// `chat-bench hold`, killed and reaped on drop.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// RSS growth of the frontends of one kind, and the connections they hold.
#[derive(Default)]
struct Growth {
    kib: u64,
    connections: usize,
}

impl Growth {
    fn per_connection(&self) -> Value {
        if self.connections == 0 {
            return Value::Null;
        }
        json!(self.kib as f64 / self.connections as f64)
    }
}

/// `chat-bench hold`: logs in `count` clients round-robin over the telnet `addrs`, then the web
/// `ws_addrs`, and holds them, idle, until killed; says `held N` once all are in.
pub async fn hold(
    addrs: Vec<SocketAddr>,
    ws_addrs: Vec<SocketAddr>,
    count: usize,
    prefix: String,
    storm: bool,
) -> Result<()> {
    let addrs: Vec<(SocketAddr, bool)> = addrs
        .into_iter()
        .map(|a| (a, false))
        .chain(ws_addrs.into_iter().map(|a| (a, true)))
        .collect();
    let login = if storm { Login::Storm } else { Login::Steady };
    let clients = login.clients(&addrs, count, &prefix).await?;
    println!("held {}", clients.len());
    std::future::pending::<()>().await;
    Ok(())
}
