//! Running the scripts: on one connection, in the order the member made them, as pipelines
//! (whatever waits goes in one round trip). A script is answered to the member only once it ran;
//! on a lost connection, or an error that passes, it and those after it go again, in order (each
//! is safe to run twice).

use std::collections::VecDeque;

use redis::aio::MultiplexedConnection;
use redis::{Client, RedisResult, Value};
use tokio::sync::mpsc;

use super::{Incoming, Outage, Reply, Request, Script, TIMEOUT, connect};

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

/// Runs the scripts in order, as pipelines, for as long as the member and the hub are there.
pub(super) async fn run_scripts<T>(
    client: Client,
    keys: [String; 8],
    mut requests: mpsc::UnboundedReceiver<Request>,
    hub: mpsc::Sender<T>,
    wrap: fn(Incoming) -> T,
) {
    let mut runner = Runner {
        client,
        keys,
        conn: None,
        backlog: VecDeque::new(),
        outage: Outage::new("cannot reach Redis: the cluster's lines wait, in order"),
    };
    loop {
        if !runner.gather(&mut requests).await {
            return;
        }
        let Some(results) = runner.run().await else { continue };
        if !runner.answer(results, &hub, wrap).await {
            return;
        }
    }
}

struct Runner {
    client: Client,
    keys: [String; 8],
    conn: Option<MultiplexedConnection>,
    /// Requests taken from the member and not answered yet, in order.
    backlog: VecDeque<Request>,
    outage: Outage,
}

impl Runner {
    /// Waits for a request if none waits already, then takes what else came, up to a pipeline's
    /// worth. Returns false once the member is gone.
    async fn gather(&mut self, requests: &mut mpsc::UnboundedReceiver<Request>) -> bool {
        if self.backlog.is_empty() {
            match requests.recv().await {
                Some(request) => self.backlog.push_back(request),
                None => return false,
            }
        }
        while self.backlog.len() < PIPELINE {
            match requests.try_recv() {
                Ok(request) => self.backlog.push_back(request),
                Err(_) => break,
            }
        }
        true
    }

    /// Connects, with every script loaded (the pipelines call them by hash), unless connected.
    /// Returns false after a failure and a wait.
    async fn connected(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        let conn = match connect(&self.client).await {
            Ok(mut conn) => load(&mut conn).await.map(|()| conn),
            Err(e) => Err(e),
        };
        match conn {
            Ok(conn) => {
                if let Some(after) = self.outage.over() {
                    tracing::info!(?after, "reached Redis again");
                }
                self.conn = Some(conn);
                true
            }
            Err(e) => {
                self.outage.wait(&e).await;
                false
            }
        }
    }

    /// Runs the front of the backlog as one pipeline: a result for each, in order, or `None`
    /// after a failure and a wait.
    async fn run(&mut self) -> Option<Vec<RedisResult<Value>>> {
        if !self.connected().await {
            return None;
        }
        let connection = self.conn.as_mut().expect("connected");
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for request in self.backlog.iter().take(PIPELINE) {
            pipe.cmd("EVALSHA")
                .arg(request.script.redis().get_hash())
                .arg(self.keys.len())
                .arg(&self.keys[..])
                .arg(&request.args);
        }
        match tokio::time::timeout(TIMEOUT, pipe.query_async(connection)).await {
            Ok(Ok(results)) => Some(results),
            Ok(Err(e)) => {
                self.conn = None;
                self.outage.wait(&e).await;
                None
            }
            Err(_) => {
                self.conn = None;
                self.outage.wait(&"no answer in time").await;
                None
            }
        }
    }

    /// Answers to the member, in order, the requests whose scripts ran; stops at the first that
    /// must go again. Returns false once the hub is gone.
    async fn answer<T>(
        &mut self,
        results: Vec<RedisResult<Value>>,
        hub: &mpsc::Sender<T>,
        wrap: fn(Incoming) -> T,
    ) -> bool {
        for result in results {
            if let Err(e) = &result
                && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
            {
                // Flushed under us (a Redis that restarted): load them and send the rest again.
                self.conn = None;
                break;
            }
            if let Err(e) = &result
                && e.code().is_some_and(|code| TRANSIENT.contains(&code))
            {
                // Redis cannot run it now: this one and the rest go again, in order, a while later
                // (those that ran are safe to run twice).
                self.outage.wait(e).await;
                break;
            }
            let request = self.backlog.pop_front().expect("one result per request");
            let reply = read(request.script, result);
            if hub
                .send(wrap(Incoming::Answer { id: request.id, reply }))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

/// What a script answered (`None`: an error, logged).
fn read(script: Script, result: RedisResult<Value>) -> Option<Reply> {
    let reply = match result {
        Ok(value) => Reply::parse(&value),
        Err(e) => {
            tracing::error!(?script, error = %e, "a cluster script failed");
            None
        }
    };
    if reply.is_none() {
        tracing::warn!(?script, "a cluster script's answer made no sense");
    }
    reply
}

/// Loads every script.
async fn load(conn: &mut MultiplexedConnection) -> RedisResult<()> {
    for script in Script::ALL {
        script.redis().prepare_invoke().load_async(conn).await?;
    }
    Ok(())
}
