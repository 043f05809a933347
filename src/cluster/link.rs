//! The member's I/O with Redis (redis-rs on tokio): one connection runs the scripts, in the order
//! they were made, as pipelines (whatever waits goes in one round trip); another reads the stream
//! (`XREAD BLOCK`) from where the member says; a third refreshes the node's presence every second
//! whatever the kernel is busy with; a ticker asks the member for its heartbeat every second.
//!
//! Redis may go away at any time. The scripts then wait, in order, and are sent again on a new
//! connection (each is safe to run twice: the frame checks of the scripts see to that); the
//! reader connects again and goes on from its last entry. What comes back goes to the hub as
//! [`Incoming`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, Value};
use tokio::sync::{mpsc, watch};

use super::entry::{Entry, Id};
use super::member::{Reading, Request};
use super::scripts::{self, Reply, Script};

/// Server errors that pass (a replica being promoted, Redis loading its data, a script running
/// long, memory or disk trouble): the scripts wait and go again, as after a lost connection.
const TRANSIENT: [&str; 8] = [
    "LOADING",
    "TRYAGAIN",
    "MASTERDOWN",
    "READONLY",
    "BUSY",
    "OOM",
    "MISCONF",
    "NOREPLICAS",
];

/// Scripts sent in one round trip at most.
const PIPELINE: usize = 512;
/// Entries read at once at most.
const READ_COUNT: usize = 1024;
/// How long a read blocks waiting for an entry.
const READ_BLOCK: Duration = Duration::from_millis(1000);
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
    epoch: watch::Sender<String>,
}

impl Link {
    /// Starts the link's tasks for Redis at `url`, keys named from `prefix`; what comes back goes
    /// to `hub`, made into its input by `wrap`. `presence`: the node and instance, and the
    /// presence's life in milliseconds (the Alive script's arguments after the epoch).
    pub fn start<T: Send + 'static>(
        url: &str,
        prefix: &str,
        presence: [String; 3],
        hub: mpsc::Sender<T>,
        wrap: fn(Incoming) -> T,
    ) -> anyhow::Result<Self> {
        let client = Client::open(url)?;
        let keys = scripts::keys(prefix);
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (reading, reading_rx) = watch::channel(Reading::default());
        let (epoch, epoch_rx) = watch::channel(String::new());
        tokio::spawn(keep_present(client.clone(), keys.clone(), presence, epoch_rx));
        tokio::spawn(run_scripts(
            client.clone(),
            keys.clone(),
            requests_rx,
            hub.clone(),
            wrap,
        ));
        tokio::spawn(read_stream(client, keys[3].clone(), reading_rx, hub.clone(), wrap));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if hub.send(wrap(Incoming::Tick)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            requests,
            reading,
            epoch,
        })
    }

    /// The epoch the member joined: the presence refresher's guard ("": not joined yet).
    pub fn joined(&self, epoch: &str) {
        self.epoch.send_if_modified(|e| {
            let changed = e != epoch;
            if changed {
                *e = epoch.to_string();
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

/// Runs the scripts in order, as pipelines; on a failure, the same ones again once connected.
async fn run_scripts<T>(
    client: Client,
    keys: [String; 8],
    mut requests: mpsc::UnboundedReceiver<Request>,
    hub: mpsc::Sender<T>,
    wrap: fn(Incoming) -> T,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backlog: VecDeque<Request> = VecDeque::new();
    let mut retry = RETRY_FIRST;
    let mut down_since: Option<std::time::Instant> = None;
    loop {
        if backlog.is_empty() {
            match requests.recv().await {
                Some(request) => backlog.push_back(request),
                None => return,
            }
        }
        while backlog.len() < PIPELINE {
            match requests.try_recv() {
                Ok(request) => backlog.push_back(request),
                Err(_) => break,
            }
        }
        let connection = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&client).await {
                Ok(mut c) => match load(&mut c).await {
                    Ok(()) => {
                        if let Some(since) = down_since.take() {
                            tracing::info!(after = ?since.elapsed(), "reached Redis again");
                        }
                        retry = RETRY_FIRST;
                        conn.insert(c)
                    }
                    Err(e) => {
                        wait(&mut retry, &mut down_since, &e).await;
                        continue;
                    }
                },
                Err(e) => {
                    wait(&mut retry, &mut down_since, &e).await;
                    continue;
                }
            },
        };
        let batch = backlog.len().min(PIPELINE);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for request in backlog.iter().take(batch) {
            let script = request.script.redis();
            pipe.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(keys.len())
                .arg(&keys[..])
                .arg(&request.args);
        }
        let results: Vec<redis::RedisResult<Value>> =
            match tokio::time::timeout(TIMEOUT, pipe.query_async(connection)).await {
                Ok(Ok(results)) => results,
                Ok(Err(e)) => {
                    conn = None;
                    wait(&mut retry, &mut down_since, &e).await;
                    continue;
                }
                Err(_) => {
                    conn = None;
                    wait(&mut retry, &mut down_since, &"no answer in time").await;
                    continue;
                }
            };
        for result in results {
            if let Err(e) = &result
                && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
            {
                // Flushed under us (a Redis that restarted): load them and send the rest again.
                conn = None;
                break;
            }
            if let Err(e) = &result
                && e.code().is_some_and(|code| TRANSIENT.contains(&code))
            {
                // Redis cannot run it now: this one and the rest go again, in order, a while later
                // (those that ran are safe to run twice).
                wait(&mut retry, &mut down_since, e).await;
                break;
            }
            let request = backlog.pop_front().expect("one result per request");
            let reply = match result {
                Ok(value) => Reply::parse(&value),
                Err(e) => {
                    tracing::error!(script = ?request.script, error = %e, "a cluster script failed");
                    None
                }
            };
            if reply.is_none() {
                tracing::warn!(script = ?request.script, "a cluster script's answer made no sense");
            }
            if hub
                .send(wrap(Incoming::Answer { id: request.id, reply }))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Loads every script (the pipelines call them by hash).
async fn load(conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    for script in Script::ALL {
        script.redis().prepare_invoke().load_async(conn).await?;
    }
    Ok(())
}

async fn wait(retry: &mut Duration, down_since: &mut Option<std::time::Instant>, why: &(dyn std::fmt::Display + Sync)) {
    if down_since.is_none() {
        tracing::warn!(error = %why, "cannot reach Redis: the cluster's lines wait, in order");
        *down_since = Some(std::time::Instant::now());
    }
    tokio::time::sleep(*retry).await;
    *retry = (*retry * 2).min(RETRY_LAST);
}

/// Refreshes the node's presence every second on a connection of its own, once the member has
/// joined (`epoch`): a kernel busy with a burst, or a backlog of scripts after an outage, does not
/// let it lapse.
async fn keep_present(client: Client, keys: [String; 8], presence: [String; 3], mut epoch: watch::Receiver<String>) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let epoch = epoch.borrow_and_update().clone();
        if epoch.is_empty() {
            continue;
        }
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

/// Reads the stream from the position the member sets, for as long as the hub listens.
async fn read_stream<T>(
    client: Client,
    events: String,
    mut reading: watch::Receiver<Reading>,
    hub: mpsc::Sender<T>,
    wrap: fn(Incoming) -> T,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut retry = RETRY_FIRST;
    let mut down_since = None;
    let mut position = *reading.borrow_and_update();
    loop {
        if position.generation == 0 {
            if reading.changed().await.is_err() {
                return;
            }
            position = *reading.borrow_and_update();
            continue;
        }
        let connection = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&client).await {
                Ok(c) => {
                    down_since = None;
                    retry = RETRY_FIRST;
                    conn.insert(c)
                }
                Err(e) => {
                    if down_since.is_none() {
                        down_since = Some(());
                        tracing::warn!(error = %e, "cannot read the cluster's stream: reading again once Redis is back");
                    }
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_LAST);
                    continue;
                }
            },
        };
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&events)
            .arg(position.from.to_string());
        let answer = tokio::select! {
            changed = reading.changed() => {
                if changed.is_err() {
                    return;
                }
                // Repositioned: what this read brings would be from the old position.
                position = *reading.borrow_and_update();
                conn = None;
                continue;
            }
            answer = tokio::time::timeout(READ_BLOCK + TIMEOUT, read.query_async::<Value>(connection)) => answer,
        };
        let value = match answer {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "reading the stream failed");
                conn = None;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_LAST);
                continue;
            }
            Err(_) => {
                conn = None;
                continue;
            }
        };
        let entries = parse_read(&value);
        let Some(last) = entries.last().map(|(id, _, _)| *id) else {
            continue;
        };
        position.from = last;
        if hub
            .send(wrap(Incoming::Entries {
                generation: position.generation,
                entries,
            }))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The entries of an `XREAD` answer (one stream): `[[name, [[id, [field, value, …]], …]]]`.
fn parse_read(value: &Value) -> Vec<(Id, String, Option<Entry>)> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let list = |v: &Value| match v {
        Value::Array(items) => Some(items.clone()),
        _ => None,
    };
    let mut out = Vec::new();
    let streams = match value {
        Value::Array(streams) => streams.clone(),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| Value::Array(vec![k.clone(), v.clone()]))
            .collect(),
        _ => return out,
    };
    for stream in streams {
        let Some(pair) = list(&stream) else { continue };
        let Some(entries) = pair.get(1).and_then(list) else {
            continue;
        };
        for entry in entries {
            let Some(parts) = list(&entry) else { continue };
            let Some(id) = parts.first().and_then(text).and_then(|s| s.parse::<Id>().ok()) else {
                continue;
            };
            let fields: HashMap<String, String> = parts
                .get(1)
                .and_then(list)
                .unwrap_or_default()
                .chunks_exact(2)
                .filter_map(|kv| Some((text(&kv[0])?, text(&kv[1])?)))
                .collect();
            let epoch = fields.get("e").cloned().unwrap_or_default();
            out.push((id, epoch, Entry::parse(&fields)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn an_xread_answer_gives_its_entries_in_order() {
        let entry = |id: &str, kind: &str| {
            Value::Array(vec![
                bulk(id),
                Value::Array(vec![
                    bulk("e"),
                    bulk("ep1"),
                    bulk("k"),
                    bulk(kind),
                    bulk("o"),
                    bulk("h1/web/1"),
                    bulk("n"),
                    bulk("ann"),
                    bulk("h"),
                    bulk("10:00:00"),
                    bulk("x"),
                    bulk("hi"),
                ]),
            ])
        };
        let answer = Value::Array(vec![Value::Array(vec![
            bulk("chat:events"),
            Value::Array(vec![entry("5-0", "all"), entry("5-1", "future")]),
        ])]);
        let got = parse_read(&answer);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "5-0".parse().unwrap());
        assert_eq!(got[0].1, "ep1");
        assert!(matches!(&got[0].2, Some(Entry::All { text, .. }) if text == "hi"));
        assert_eq!(got[1].2, None, "a kind this version does not know is skipped");
        assert!(parse_read(&Value::Nil).is_empty());
    }
}
