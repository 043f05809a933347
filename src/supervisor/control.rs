//! The control socket (`run/control.sock`, mode 0600): one JSON request per connection, one JSON
//! reply, used by `status`, `restart`, `stop`, `start`, `reload` and `down`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Longest request accepted, in bytes.
const MAX_REQUEST: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    /// Server names, `kernel`, or `all` (every server).
    Restart {
        names: Vec<String>,
    },
    Stop {
        names: Vec<String>,
    },
    Start {
        names: Vec<String>,
    },
    Reload,
    Down,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Row>,
    /// `status`: set while the config file differs from what runs because a reload refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// `status` of a cluster member: its cluster and every node's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRow>,
}

/// What `status` shows of the cluster this host is a member of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRow {
    pub redis: String,
    /// This host's node.
    pub node: String,
    /// Every node this kernel knows of and its logged-in users (unknown if the kernel did not
    /// answer: then empty).
    pub nodes: Vec<NodeRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRow {
    pub name: String,
    pub users: u64,
}

/// One line of `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub kind: String,
    pub address: String,
    pub pid: Option<u32>,
    pub state: String,
    pub uptime_secs: Option<u64>,
    pub restarts: u32,
    /// Logged-in users on this server (all of them on the kernel's row); unknown if the kernel
    /// did not answer.
    pub users: Option<u64>,
}

/// A request from the socket, with where to send the reply.
pub type Incoming = (Request, Responder);

/// Answers one control connection. Replies are written by whoever handles the request, so a
/// `down` reply is on the wire before the supervisor exits.
pub struct Responder(tokio::net::unix::OwnedWriteHalf);

impl Responder {
    pub async fn send(mut self, reply: &Reply) {
        let mut text = serde_json::to_string(reply).expect("plain data");
        text.push('\n');
        let _ = tokio::time::timeout(Duration::from_secs(1), self.0.write_all(text.as_bytes())).await;
    }
}

/// Accepts control connections and forwards their requests until the receiver is gone.
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<Incoming>) {
    while let Ok((stream, _)) = listener.accept().await {
        if !crate::kernel::socket::same_user(&stream).unwrap_or(false) {
            tracing::warn!("refused a control connection from another user");
            continue;
        }
        let requests = requests.clone();
        tokio::spawn(async move {
            let (read, write) = stream.into_split();
            let responder = Responder(write);
            let mut line = String::new();
            let read = BufReader::new(read.take(MAX_REQUEST)).read_line(&mut line).await;
            match read
                .map_err(anyhow::Error::from)
                .and_then(|_| Ok(serde_json::from_str(&line)?))
            {
                Ok(request) => {
                    let _ = requests.send((request, responder)).await;
                }
                Err(e) => {
                    let reply = Reply {
                        ok: false,
                        message: format!("bad request: {e}"),
                        ..Reply::default()
                    };
                    responder.send(&reply).await;
                }
            }
        });
    }
}

/// Sends one request to the supervisor whose control socket is `path`.
pub async fn call(path: &Path, request: &Request, timeout: Duration) -> Result<Reply> {
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "no supervisor is running for this config (nothing answers on {})",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut text = serde_json::to_string(request)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    let mut line = String::new();
    let n = tokio::time::timeout(timeout, BufReader::new(read).read_line(&mut line))
        .await
        .context("the supervisor did not answer in time")??;
    if n == 0 {
        bail!("the supervisor closed the control connection without answering");
    }
    Ok(serde_json::from_str(&line)?)
}

/// Formats `status` as a table; with `color`, states in ANSI colours (green running; yellow
/// starting, backoff and stopping; red failed; dim stopped).
pub fn table(rows: &[Row], color: bool) -> String {
    let header = ["NAME", "KIND", "ADDRESS", "PID", "STATE", "UPTIME", "RESTARTS", "USERS"];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.kind.clone(),
                r.address.clone(),
                r.pid.map_or("-".into(), |p| p.to_string()),
                r.state.clone(),
                r.uptime_secs.map_or("-".into(), uptime),
                r.restarts.to_string(),
                r.users.map_or("-".into(), |u| u.to_string()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String], paint: bool| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| match sgr(c).filter(|_| paint && i == STATE) {
                // Padded outside the colour, so that columns still line up.
                Some(code) => format!("\x1b[{code}m{c}\x1b[0m{:1$}", "", w - c.chars().count()),
                None => format!("{c:<w$}"),
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(String::from), false);
    for row in &cells {
        line(row, color);
    }
    out
}

/// The STATE column.
const STATE: usize = 4;

/// The colour of a state.
fn sgr(state: &str) -> Option<&'static str> {
    use super::lifecycle::State;
    Some(match state.parse::<State>().ok()? {
        State::Running => "32",
        State::Starting | State::Backoff | State::Stopping => "33",
        State::Failed => "31",
        State::Stopped => "2",
    })
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests;
