//! Load clients: logged in over telnet or WebSocket, each a writer task and a reader task that
//! tallies the stamped lines (`t=NANOS`) it receives and, if asked, their delivery latencies.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
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
    /// Bytes of those lines, each with one byte for its end.
    pub bytes: AtomicU64,
    /// Newest receive time of a stamped line.
    pub last_ns: AtomicU64,
    /// Delivery latencies, in microseconds.
    pub latencies: Mutex<Vec<u32>>,
    /// The client's connection ended.
    pub closed: AtomicBool,
}

impl Tally {
    /// Forgets what arrived so far (the login broadcasts, say), before a measurement.
    pub fn reset(&self) {
        self.latencies.lock().unwrap().clear();
        self.count.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
    }
}

/// A connected, logged-in client: a writer and a reader task tallying stamped lines (`t=NANOS`).
pub struct Client {
    pub send: mpsc::UnboundedSender<String>,
    pub tally: Arc<Tally>,
}

impl Client {
    /// Connects, logs in as `name`, and waits for the login broadcast.
    pub async fn login(addr: SocketAddr, ws: bool, name: &str, record: bool) -> Result<Self> {
        Self::connect(addr, ws, name, record).await?.login().await
    }

    /// Connects, not yet logged in.
    pub async fn connect(addr: SocketAddr, ws: bool, name: &str, record: bool) -> Result<Connected> {
        let tally = Arc::new(Tally::default());
        let (send, outgoing) = mpsc::unbounded_channel::<String>();
        let (logged_in, wait) = tokio::sync::oneshot::channel();
        let lines = Lines {
            tally: tally.clone(),
            me: format!("[{name}] login to chat."),
            logged_in: Some(logged_in),
            last: Vec::new(),
            record,
        };
        if ws {
            let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                .await
                .with_context(|| format!("connecting {name} to web {addr}"))?;
            tokio::spawn(ws_client(stream, outgoing, lines));
        } else {
            let stream = TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting {name} to telnet {addr}"))?;
            stream.set_nodelay(true)?;
            tokio::spawn(tcp_client(stream, outgoing, lines));
        }
        Ok(Connected {
            client: Self { send, tally },
            name: name.to_string(),
            to: format!("{} {addr}", if ws { "web" } else { "telnet" }),
            wait,
        })
    }

    pub fn say(&self, line: String) {
        let _ = self.send.send(line);
    }
}

/// A connected client that has not logged in yet.
pub struct Connected {
    client: Client,
    name: String,
    /// The frontend it is connected to, to say which one refused a login.
    to: String,
    /// Answered by the reader when the client's own login broadcast arrives, or it closes first.
    wait: tokio::sync::oneshot::Receiver<Result<(), String>>,
}

impl Connected {
    /// Sends `login NAME`, to be waited for with [`Connected::logged_in`].
    pub fn send_login(&self) {
        self.client.say(format!("login {}", self.name));
    }

    /// Waits for the client's own login broadcast.
    pub async fn logged_in(self) -> Result<Client> {
        let (name, to) = (&self.name, &self.to);
        match tokio::time::timeout(Duration::from_secs(60), self.wait).await {
            Err(_) => bail!("login of {name} on {to} timed out"),
            Ok(Err(_)) => bail!("the reader of {name} on {to} ended before its login"),
            Ok(Ok(Err(last))) => bail!("{to} closed {name}'s connection before its login; last line: {last:?}"),
            Ok(Ok(Ok(()))) => Ok(self.client),
        }
    }

    /// Logs in and waits for the login broadcast.
    pub async fn login(self) -> Result<Client> {
        self.send_login();
        self.logged_in().await
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
    tally.bytes.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
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
    fn closed(&mut self);
}

/// What a client's reader does with each line: notice its own login, tally stamped lines.
struct Lines {
    tally: Arc<Tally>,
    /// Its own login broadcast, and who waits for it.
    me: String,
    /// Told `Ok` at the login broadcast, or the last line seen if the connection ends first.
    logged_in: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// The last line before the login broadcast, to say why a login failed.
    last: Vec<u8>,
    record: bool,
}

impl Reader for Lines {
    fn line(&mut self, line: &[u8]) {
        if self.logged_in.is_some() {
            if line.windows(self.me.len()).any(|w| w == self.me.as_bytes()) {
                let _ = self.logged_in.take().map(|l| l.send(Ok(())));
            } else {
                self.last.clear();
                self.last.extend_from_slice(line);
            }
        }
        tally_line(line, &self.tally, self.record);
    }

    fn closed(&mut self) {
        self.tally.closed.store(true, Ordering::Relaxed);
        if let Some(waiting) = self.logged_in.take() {
            let last = String::from_utf8_lossy(&self.last).trim_end().to_string();
            let _ = waiting.send(Err(last));
        }
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

/// Logs in `count` clients named `{prefix}{i}` round-robin over `addrs` in a storm: `batch` of
/// them connect at once, then send their logins at the same moment; the next batch starts as soon
/// as every one of these is in.
pub async fn storm(addrs: &[(SocketAddr, bool)], count: usize, prefix: &str, batch: usize) -> Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(count);
    for start in (0..count).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(count);
        let connecting = (start..end).map(|i| {
            let (addr, ws) = addrs[i % addrs.len()];
            let name = format!("{prefix}{i}");
            async move { Client::connect(addr, ws, &name, false).await }
        });
        let connected = futures_util::future::try_join_all(connecting).await?;
        for c in &connected {
            c.send_login();
        }
        clients.extend(futures_util::future::try_join_all(connected.into_iter().map(Connected::logged_in)).await?);
    }
    Ok(clients)
}

/// How many of `count` clients spread round-robin over `frontends` land on each one.
pub fn spread(count: usize, frontends: usize) -> Vec<usize> {
    (0..frontends)
        .map(|f| count / frontends + usize::from(f < count % frontends))
        .collect()
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
        let line = format!("[f2] msgall t={sent}\n");
        assert_eq!(tally.bytes.load(Ordering::Relaxed), 2 * line.len() as u64);
        assert!(tally.last_ns.load(Ordering::Relaxed) >= sent);
        // Only a recording client keeps latencies.
        assert_eq!(tally.latencies.lock().unwrap().len(), 1);
    }

    #[test]
    fn round_robin_spread() {
        assert_eq!(spread(10_000, 4), [2500; 4]);
        assert_eq!(spread(10, 4), [3, 3, 2, 2]);
        assert_eq!(spread(10, 4).iter().sum::<usize>(), 10);
    }
}
