//! The member's I/O with Redis (redis-rs on tokio), one task per connection: `pipeline` runs
//! the scripts, in the order they were made, as pipelines (whatever waits goes in one round
//! trip); `stream` reads the stream (`XREAD BLOCK`) from where the member says; a third task
//! refreshes the node's presence every second whatever the kernel is busy with; a ticker asks
//! the member for its heartbeat every second.
//!
//! Redis may go away at any time. The scripts then wait, in order, and are sent again on a new
//! connection (each is safe to run twice: the frame checks of the scripts see to that); the
//! reader connects again and goes on from its last entry. What comes back goes to the hub as
//! [`Incoming`].

mod pipeline;
mod stream;

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{Client, Value};
use tokio::sync::{mpsc, watch};

use super::entry::{Entry, Id};
use super::member::{Reading, Request};
use super::scripts::{self, Reply, Script};

/// Waits between tries to reach Redis: from the first to the last, doubling.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_LAST: Duration = Duration::from_secs(1);
/// A connection attempt or an answer that takes longer has failed.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What the link tells the hub.
#[derive(Debug)]
pub enum Incoming {
    /// Request `id` was answered (`None`: an error, or an answer that makes no sense).
    Answer { id: u64, reply: Option<Reply> },
    /// Entries read from the position of this generation, in order, each with the epoch it was
    /// appended in (`None`: an entry this version does not know).
    Entries {
        generation: u64,
        entries: Vec<(Id, String, Option<Entry>)>,
    },
    /// A second passed.
    Tick,
}

/// The hub's handle on the link.
pub struct Link {
    requests: mpsc::UnboundedSender<Request>,
    reading: watch::Sender<Reading>,
    epoch: watch::Sender<Option<String>>,
}

impl Link {
    /// Starts the link's tasks for Redis at `url`, keys named from `prefix`; what comes back goes
    /// to `hub`, made into its input by `wrap`; `presence`: what this node refreshes.
    pub fn start<T: Send + 'static>(
        url: &str,
        prefix: &str,
        presence: Presence,
        hub: mpsc::Sender<T>,
        wrap: fn(Incoming) -> T,
    ) -> anyhow::Result<Self> {
        let client = Client::open(url)?;
        let keys = scripts::keys(prefix);
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (reading, reading_rx) = watch::channel(Reading::default());
        let (epoch, epoch_rx) = watch::channel(None);
        let events = keys[scripts::EVENTS].clone();
        tokio::spawn(keep_present(client.clone(), keys.clone(), presence, epoch_rx));
        tokio::spawn(pipeline::run_scripts(
            client.clone(),
            keys,
            requests_rx,
            hub.clone(),
            wrap,
        ));
        tokio::spawn(stream::read_stream(client, events, reading_rx, hub.clone(), wrap));
        tokio::spawn(tick(hub, wrap));
        Ok(Self {
            requests,
            reading,
            epoch,
        })
    }

    /// The epoch the member joined, if it has: the presence refresher's guard.
    pub fn joined(&self, epoch: Option<&str>) {
        self.epoch.send_if_modified(|e| {
            let changed = e.as_deref() != epoch;
            if changed {
                *e = epoch.map(str::to_string);
            }
            changed
        });
    }

    pub fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }

    /// Reads the stream from `reading` on (if it changed).
    pub fn read_from(&self, reading: Reading) {
        self.reading
            .send_if_modified(|r| std::mem::replace(r, reading) != reading);
    }
}

/// Checks that Redis at `url` answers (for `up` and `check`).
pub async fn ping(url: &str) -> anyhow::Result<()> {
    let client = Client::open(url)?;
    let mut conn = tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection()).await??;
    let _: String = tokio::time::timeout(TIMEOUT, redis::cmd("PING").query_async(&mut conn)).await??;
    Ok(())
}

async fn connect(client: &Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(None);
    match tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection_with_config(&config)).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        ))),
    }
}

/// A connection's tries to reach Redis: the wait before each, doubling from [`RETRY_FIRST`] to
/// [`RETRY_LAST`], and the outage they belong to, whose start is logged once.
#[derive(Debug)]
struct Outage {
    /// What the log says when an outage starts.
    warning: &'static str,
    retry: Duration,
    since: Option<Instant>,
}

impl Outage {
    fn new(warning: &'static str) -> Self {
        Self {
            warning,
            retry: RETRY_FIRST,
            since: None,
        }
    }

    /// Redis could not be reached (`why`): waits before the next try.
    async fn wait(&mut self, why: &(dyn std::fmt::Display + Sync)) {
        if self.since.is_none() {
            tracing::warn!(error = %why, "{}", self.warning);
            self.since = Some(Instant::now());
        }
        self.pause().await;
    }

    /// Waits before the next try, whether or not an outage is logged.
    async fn pause(&mut self) {
        tokio::time::sleep(self.retry).await;
        self.retry = (self.retry * 2).min(RETRY_LAST);
    }

    /// Reached Redis: the next outage waits from the start. Returns how long this one lasted, if
    /// there was one.
    fn over(&mut self) -> Option<Duration> {
        self.retry = RETRY_FIRST;
        self.since.take().map(|since| since.elapsed())
    }
}

/// What a node refreshes in Redis every second: its name, its run of `up`, and how long the
/// presence lasts without a refresh.
pub struct Presence {
    pub node: String,
    pub instance: String,
    pub ttl: Duration,
}

/// Refreshes the node's presence every second on a connection of its own, once the member has
/// joined (`epoch`): a kernel busy with a burst, or a backlog of scripts after an outage, does not
/// let it lapse.
async fn keep_present(
    client: Client,
    keys: [String; 8],
    presence: Presence,
    mut epoch: watch::Receiver<Option<String>>,
) {
    let presence = [presence.node, presence.instance, presence.ttl.as_millis().to_string()];
    let mut conn: Option<MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(epoch) = epoch.borrow_and_update().clone() else {
            continue;
        };
        if conn.is_none() {
            conn = connect(&client).await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut invoke = Script::Alive.redis().prepare_invoke();
        invoke.key(&keys[..]).arg(&epoch).arg(&presence[..]);
        let refreshed = tokio::time::timeout(TIMEOUT, invoke.invoke_async::<Value>(c)).await;
        if !matches!(refreshed, Ok(Ok(_))) {
            conn = None;
        }
    }
}

/// Tells the hub a second passed, every second, for as long as it listens.
async fn tick<T>(hub: mpsc::Sender<T>, wrap: fn(Incoming) -> T) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if hub.send(wrap(Incoming::Tick)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
