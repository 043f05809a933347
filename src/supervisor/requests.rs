//! Carrying out the control socket's requests: `status` (with the kernel's census of users),
//! `start`, `stop`, `restart` and `reload`.

use super::child::{Handle, Role};
use super::control::{self, Reply, Request, Row};
use super::lifecycle::{Event, State};
use super::{Supervisor, census};

impl Supervisor {
    /// The reply to a control request (but `down`, which the supervisor's loop answers).
    pub(super) async fn handle(&mut self, request: Request) -> Reply {
        let reply = |result: Result<String, String>| {
            let ok = result.is_ok();
            let message = result.unwrap_or_else(|e| e);
            Reply {
                ok,
                message,
                ..Reply::default()
            }
        };
        match request {
            Request::Status => {
                let (servers, cluster) = self.status().await;
                Reply {
                    ok: true,
                    message: String::new(),
                    servers,
                    config_error: self.refused.as_ref().map(|why| {
                        format!(
                            "{} changed since the running config was loaded and {why}; running the previous config",
                            self.config.path.display()
                        )
                    }),
                    cluster,
                }
            }
            Request::Reload => reply(self.reload().await),
            Request::Restart { names } => reply(self.request(&names, Event::Restart).await),
            Request::Stop { names } => reply(self.request(&names, Event::Stop).await),
            Request::Start { names } => reply(self.request(&names, Event::Start).await),
            Request::Down => unreachable!("handled by the loop"),
        }
    }

    /// `start`, `stop` or `restart` of `names` (`all`: every server), all at once; one line of
    /// reply per name. An unknown name changes nothing.
    async fn request(&self, names: &[String], request: Event) -> Result<String, String> {
        let mut handles = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match (name.as_str(), self.handle_of(name)) {
                ("all", _) => handles.extend(self.servers.values()),
                (_, Some(handle)) => handles.push(handle),
                (_, None) => unknown.push(format!("`{name}`")),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "no server named {} (see `chat-supervisor status`)",
                unknown.join(", ")
            ));
        }
        let mut seen = std::collections::HashSet::new();
        handles.retain(|h| seen.insert(h.spec.name.clone()));
        let is_kernel = |h: &Handle| matches!(h.spec.role, Role::Kernel { .. });
        handles.sort_by_key(|h| !is_kernel(h));
        let mut before = Vec::new();
        let mut rest = &handles[..];
        if let [kernel, others @ ..] = rest
            && request == Event::Restart
            && is_kernel(kernel)
            && !others.is_empty()
        {
            // The kernel first, and the servers once it is back: a server hands its clients over
            // once the kernel has acknowledged their lines, which a kernel down would delay.
            before.push(kernel.request(request).await);
            kernel.settled().await;
            rest = others;
        }
        before.extend(futures_util::future::join_all(rest.iter().map(|h| h.request(request))).await);
        let lines: Vec<String> = handles
            .iter()
            .zip(before)
            .map(|(handle, before)| {
                let name = &handle.spec.name;
                match (request, before) {
                    (Event::Stop, State::Stopped) => format!("{name} is already stopped"),
                    (Event::Start, State::Starting | State::Running) => format!("{name} is already running"),
                    (Event::Stop, _) => {
                        tracing::info!(name, "stopped on request");
                        format!("stopped {name}")
                    }
                    (Event::Start, _) => {
                        tracing::info!(name, "started on request");
                        format!("starting {name}")
                    }
                    _ => {
                        tracing::info!(name, "restarted on request");
                        format!("restarting {name}")
                    }
                }
            })
            .collect();
        Ok(lines.join("\n"))
    }

    fn handle_of(&self, name: &str) -> Option<&Handle> {
        if name == "kernel" {
            self.kernel.as_ref()
        } else {
            self.servers.get(name)
        }
    }

    async fn status(&self) -> (Vec<Row>, Option<control::ClusterRow>) {
        let census = census::census(&self.kernel_socket()).await;
        let (users, nodes) = match census {
            Some(census) => (Some(census.frontends), census.nodes),
            None => (None, Vec::new()),
        };
        let cluster = self.settings.cluster.as_ref().map(|c| control::ClusterRow {
            redis: c.redis.clone(),
            node: c.node.clone(),
            nodes: nodes
                .into_iter()
                .map(|(name, users)| control::NodeRow { name, users })
                .collect(),
        });
        let row = |handle: &Handle, users: Option<u64>| {
            let status = handle.status.borrow().clone();
            Row {
                name: handle.spec.name.clone(),
                kind: handle.spec.kind(),
                address: handle.spec.address(),
                pid: status.pid,
                state: status.state.to_string(),
                uptime_secs: status.since.map(|t| t.elapsed().as_secs()),
                restarts: status.restarts,
                users,
            }
        };
        let mut rows = Vec::new();
        if let Some(kernel) = &self.kernel {
            let total = users.as_ref().map(|u| u.iter().map(|(_, n)| n).sum());
            rows.push(row(kernel, total));
        }
        for (name, handle) in &self.servers {
            let count = users
                .as_ref()
                .map(|u| u.iter().filter(|(n, _)| n == name).map(|(_, c)| c).sum());
            rows.push(row(handle, count));
        }
        (rows, cluster)
    }
}
