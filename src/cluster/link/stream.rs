//! Reading the stream: on a connection of its own, `XREAD BLOCK` from the position the member
//! sets, for as long as the hub listens. Entries go to the hub with the generation of the
//! position they were read from, so that the member drops those of a position it left.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, Value};
use tokio::sync::{mpsc, watch};

use super::{Entry, Id, Incoming, Outage, Reading, TIMEOUT, connect};

/// Entries read at once at most.
const READ_COUNT: usize = 1024;
/// How long a read blocks waiting for an entry.
const READ_BLOCK: Duration = Duration::from_millis(1000);

/// Reads the stream named `events` from the position `reading` says, and from where it got to.
pub(super) async fn read_stream<T>(
    client: Client,
    events: String,
    mut reading: watch::Receiver<Reading>,
    hub: mpsc::Sender<T>,
    wrap: fn(Incoming) -> T,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut outage = Outage::new("cannot read the cluster's stream: reading again once Redis is back");
    let mut position = *reading.borrow_and_update();
    loop {
        if position.generation == 0 {
            if reading.changed().await.is_err() {
                return;
            }
            position = *reading.borrow_and_update();
            continue;
        }
        let Some(connection) = connected(&client, &mut conn, &mut outage).await else {
            continue;
        };
        let read = xread(&events, position.from);
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
                outage.pause().await;
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
        let generation = position.generation;
        if hub.send(wrap(Incoming::Entries { generation, entries })).await.is_err() {
            return;
        }
    }
}

/// The connection in `conn`, connecting if there is none; `None` after a failure and a wait.
async fn connected<'a>(
    client: &Client,
    conn: &'a mut Option<MultiplexedConnection>,
    outage: &mut Outage,
) -> Option<&'a mut MultiplexedConnection> {
    if conn.is_none() {
        match connect(client).await {
            Ok(c) => {
                outage.over();
                *conn = Some(c);
            }
            Err(e) => {
                outage.wait(&e).await;
                return None;
            }
        }
    }
    conn.as_mut()
}

/// `XREAD` of the stream `events` after entry `from`, blocking a while if there is none yet.
fn xread(events: &str, from: Id) -> redis::Cmd {
    let mut read = redis::cmd("XREAD");
    read.arg("COUNT")
        .arg(READ_COUNT)
        .arg("BLOCK")
        .arg(READ_BLOCK.as_millis() as u64)
        .arg("STREAMS")
        .arg(events)
        .arg(from.to_string());
    read
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
mod tests;
