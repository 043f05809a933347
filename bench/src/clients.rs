//! Load clients: logged in over telnet or WebSocket, each a writer task and a reader task that
//! tallies the stamped lines (`t=NANOS`) it receives and, if asked, their delivery latencies.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Nanoseconds since the bench started; senders stamp lines with it, receivers subtract.
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What a client's reader records.
#[derive(Default)]
pub struct Tally {
    /// Stamped lines received.
    pub count: AtomicU64,
    /// Newest receive time of a stamped line.
    pub last_ns: AtomicU64,
    /// Delivery latencies, in microseconds.
    pub latencies: Mutex<Vec<u32>>,
    /// The client's connection ended.
    pub closed: AtomicBool,
}

/// A connected, logged-in client: a writer and a reader task tallying stamped lines (`t=NANOS`).
pub struct Client {
    pub send: mpsc::UnboundedSender<String>,
    pub tally: Arc<Tally>,
}

impl Client {
    /// Connects, logs in as `name`, and waits for the login broadcast.
    pub async fn login(addr: SocketAddr, ws: bool, name: &str, record: bool) -> Result<Self> {
        let tally = Arc::new(Tally::default());
        let (send, outgoing) = mpsc::unbounded_channel::<String>();
        let (logged_in, wait) = tokio::sync::oneshot::channel();
        let lines = Lines {
            tally: tally.clone(),
            me: format!("[{name}] login to chat."),
            logged_in: Some(logged_in),
            record,
        };
        if ws {
            let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
            tokio::spawn(ws_client(stream, outgoing, lines));
        } else {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            tokio::spawn(tcp_client(stream, outgoing, lines));
        }
        send.send(format!("login {name}"))?;
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .context("login timed out")?
            .context("connection closed before login")?;
        Ok(Self { send, tally })
    }

    pub fn say(&self, line: String) {
        let _ = self.send.send(line);
    }
}

/// Records a stamped line: the stamp is the number after `t=`.
pub fn tally_line(line: &[u8], tally: &Tally, record: bool) {
    let Some(at) = line.windows(2).position(|w| w == b"t=") else {
        return;
    };
    let digits = line[at + 2..].iter().take_while(|b| b.is_ascii_digit());
    let sent = digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let now = now_ns();
    tally.count.fetch_add(1, Ordering::Relaxed);
    tally.last_ns.fetch_max(now, Ordering::Relaxed);
    if record {
        let micros = (now.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32;
        tally.latencies.lock().unwrap().push(micros);
    }
}

/// What a client's reader does with each line it receives, and when its connection ends: our
/// protocol's [`Lines`], or IRC's (`crate::irc`).
pub trait Reader: Send + 'static {
    fn line(&mut self, line: &[u8]);
    fn closed(&self);
}

/// What a client's reader does with each line: notice its own login, tally stamped lines.
struct Lines {
    tally: Arc<Tally>,
    /// Its own login broadcast, and who waits for it.
    me: String,
    logged_in: Option<tokio::sync::oneshot::Sender<()>>,
    record: bool,
}

impl Reader for Lines {
    fn line(&mut self, line: &[u8]) {
        if self.logged_in.is_some() && line.windows(self.me.len()).any(|w| w == self.me.as_bytes()) {
            let _ = self.logged_in.take().map(|l| l.send(()));
        }
        tally_line(line, &self.tally, self.record);
    }

    fn closed(&self) {
        self.tally.closed.store(true, Ordering::Relaxed);
    }
}

/// Writes `outgoing` lines (CRLF-terminated, batched) and hands every received line to `lines`.
pub async fn tcp_client(stream: TcpStream, mut outgoing: mpsc::UnboundedReceiver<String>, mut lines: impl Reader) {
    let (mut read, mut write) = stream.into_split();
    tokio::spawn(async move {
        let mut batch = String::new();
        while let Some(line) = outgoing.recv().await {
            batch.push_str(&line);
            batch.push_str("\r\n");
            while let Ok(more) = outgoing.try_recv() {
                batch.push_str(&more);
                batch.push_str("\r\n");
            }
            if write.write_all(batch.as_bytes()).await.is_err() {
                return;
            }
            batch.clear();
        }
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut held = Vec::new();
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        held.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = held[start..].iter().position(|b| *b == b'\n') {
            lines.line(&held[start..start + end]);
            start += end + 1;
        }
        held.drain(..start);
    }
    lines.closed();
}

async fn ws_client(
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    mut lines: Lines,
) {
    let (mut write, mut read) = stream.split();
    tokio::spawn(async move {
        while let Some(line) = outgoing.recv().await {
            if write.send(Message::text(line)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = read.next().await {
        if let Message::Text(text) = message {
            lines.line(text.as_bytes());
        }
    }
    lines.closed();
}

/// Logs in `count` clients named `{prefix}{i}` round-robin over `addrs`, 200 at a time.
pub async fn crowd(addrs: &[(SocketAddr, bool)], count: usize, prefix: &str, record: bool) -> Result<Vec<Client>> {
    logins(count, 200, |i| {
        let (addr, ws) = addrs[i % addrs.len()];
        let name = format!("{prefix}{i}");
        async move { Client::login(addr, ws, &name, record).await }
    })
    .await
}

/// Runs `login(i)` for `i` in `0..count`, `at_once` at a time; the clients in order.
pub async fn logins<Login>(count: usize, at_once: usize, login: impl Fn(usize) -> Login) -> Result<Vec<Client>>
where
    Login: std::future::Future<Output = Result<Client>>,
{
    let mut clients = Vec::with_capacity(count);
    let mut pending = futures_util::stream::FuturesOrdered::new();
    for i in 0..count {
        pending.push_back(login(i));
        if pending.len() >= at_once {
            clients.push(pending.next().await.expect("pending")?);
        }
    }
    while let Some(client) = pending.next().await {
        clients.push(client?);
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stamped_lines_count() {
        let tally = Tally::default();
        tally_line(b"[SYSTEM INFO] - [f1] login to chat.", &tally, true);
        assert_eq!(tally.count.load(Ordering::Relaxed), 0);
        let sent = now_ns();
        tally_line(format!("[f2] msgall t={sent}").as_bytes(), &tally, true);
        tally_line(format!("[f2] msgall t={sent}").as_bytes(), &tally, false);
        assert_eq!(tally.count.load(Ordering::Relaxed), 2);
        assert!(tally.last_ns.load(Ordering::Relaxed) >= sent);
        // Only a recording client keeps latencies.
        assert_eq!(tally.latencies.lock().unwrap().len(), 1);
    }
}
