//! The supervisor (`chat-supervisor up`): loads the config, binds every listening socket itself,
//! starts the kernel and then one frontend per server, keeps them running, answers the control
//! socket, applies config edits as a diff, and stops everything in order.
//!
//! - [`lifecycle`]: a child's states and what to do on each event (pure).
//! - [`child`]: one child and its task, carrying out its lifecycle; [`spawn`]: starting its process.
//! - [`custody`]: what the supervisor keeps for a server's clients across its processes: their
//!   [`parked`] connections (and the open-file limit they need) and its position file.
//! - [`backoff`]: restart delays and the crash-loop rule (pure).
//! - [`watchdog`]: notify messages and when a silent child counts as hung (pure); [`pulse`]: the
//!   supervisor's own heartbeat, which tells a hung child from a paused supervisor.
//! - [`plan`]: what an edit of the config changes (pure); [`watch`]: noticing the edit.
//! - [`control`]: the control socket and the `status` table; [`census`]: users per server.
//! - [`unavailable`]: answering the clients of a stopped or failed server ourselves.
//! - [`lock`]: one supervisor per config.
//! - [`logfile`]: daily-rotated log files with a stable live name, written off the async thread.
//! - [`logs`]: `chat-supervisor logs`: print and follow a log.

pub mod backoff;
pub mod census;
pub mod child;
pub mod control;
pub mod custody;
pub mod lifecycle;
pub mod lock;
pub mod logfile;
pub mod logs;
pub mod parked;
pub mod plan;
pub mod pulse;
pub mod spawn;
pub mod unavailable;
pub mod watch;
pub mod watchdog;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use crate::config::{self, Config, Restart, Server};
use child::{Handle, Role, Spec};
use control::{Reply, Request, Row};
use custody::Custody;
use lifecycle::{Event, State};

/// Runs `up` until SIGTERM, Ctrl-C or `down`. Why it failed is logged too, if the log folder can
/// be had (even from a config that is otherwise invalid).
pub fn up(config_path: &Path) -> Result<()> {
    let config = config::load(config_path);
    let logs = match &config {
        Ok(c) => Ok((c.log_dir.clone(), c.log_keep)),
        Err(_) => config::load_partial(config_path).map(|c| (c.log_dir, c.log_keep)),
    };
    let Ok((log_dir, log_keep)) = logs else {
        return config.map(drop);
    };
    // Logs may be read by others, never written: a planted file or link could take our lines.
    crate::kernel::socket::owned_dir(&log_dir, 0o755, 0o022, "writable by us alone")?;
    let _logging = logfile::init(&log_dir, log_keep)?;
    let result = config.and_then(run_up);
    if let Err(e) = &result {
        logfile::failed(e);
    }
    result
}

fn run_up(config: Config) -> Result<()> {
    spawn::note_exe();
    crate::kernel::socket::private_dir(&config.run_dir)?;
    let _lock = lock::Lock::take(&config.run_dir, &config.path)?;
    if let Some(problem) = parked::raise_fd_limit(&config) {
        tracing::warn!("{problem}");
    }

    if let Some(cluster) = &config.cluster {
        reach(cluster)?;
    }
    // Every address is bound before any child starts, so a port in use stops `up` cleanly.
    let mut listeners = BTreeMap::new();
    for server in &config.servers {
        listeners.insert(server.name.clone(), Arc::new(bind(server)?));
    }
    // A single thread: the parent-death signal is tied to the thread that forks each child.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(Supervisor::new(config, listeners).run())
}

/// Fails unless the cluster's Redis answers: `up` with an unreachable one is a mistake to say at
/// once (a Redis that goes away later is ridden out).
fn reach(cluster: &crate::cluster::Cluster) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime
        .block_on(crate::cluster::link::ping(&cluster.redis))
        .with_context(|| format!("[cluster] redis = {:?} does not answer", cluster.redis))
}

fn bind(server: &Server) -> Result<TcpListener> {
    let listener = TcpListener::bind(server.addr())
        .with_context(|| format!("server `{}`: cannot bind {}", server.name, server.addr()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

struct Supervisor {
    /// The config `up` started with: its `[supervisor]` settings hold until the next `up`.
    settings: Config,
    /// The config that runs: the file as last applied.
    config: Config,
    /// The servers a restarted kernel waits for; shared with the kernel's spec.
    expect: Arc<parking_lot::Mutex<Vec<String>>>,
    kernel: Option<Handle>,
    servers: BTreeMap<String, Handle>,
    listeners: BTreeMap<String, Arc<TcpListener>>,
    /// When the running config was applied, and what that changed, for a `reload` with nothing
    /// new to apply.
    applied: (chrono::DateTime<chrono::Local>, String),
    /// Why the config file, edited since, was not applied (`is invalid: …`), for `status`.
    refused: Option<String>,
}

impl Supervisor {
    fn new(config: Config, listeners: BTreeMap<String, Arc<TcpListener>>) -> Self {
        let names = config.servers.iter().map(|s| s.name.clone()).collect();
        Self {
            settings: config.clone(),
            config,
            expect: Arc::new(parking_lot::Mutex::new(names)),
            kernel: None,
            servers: BTreeMap::new(),
            listeners,
            applied: (chrono::Local::now(), "when `up` started".into()),
            refused: None,
        }
    }

    fn kernel_socket(&self) -> PathBuf {
        self.settings.run_dir.join("kernel.sock")
    }

    fn spec(&self, name: &str, role: Role, restart: Restart) -> Spec {
        Spec {
            name: name.to_string(),
            role,
            restart,
            kernel_socket: self.kernel_socket(),
            notify_socket: self.settings.run_dir.join(format!("{name}.notify")),
            watchdog: self.settings.watchdog,
            log_dir: self.settings.log_dir.clone(),
            log_keep: self.settings.log_keep,
        }
    }

    fn start_server(&mut self, server: &Server) {
        self.start_server_with(server, None);
    }

    /// Starts `server`, with the custody of its clients from an earlier handle of it, if any.
    fn start_server_with(&mut self, server: &Server, custody: Option<Custody>) {
        let listener = self.listeners[&server.name].clone();
        let role = Role::Frontend {
            server: server.clone(),
            listener,
        };
        let spec = self.spec(&server.name, role, server.restart);
        self.servers
            .insert(server.name.clone(), Handle::start_with(spec, custody));
    }

    async fn run(mut self) -> Result<()> {
        tracing::info!(config = %self.config.path.display(), pid = std::process::id(), "supervisor starting");
        // WATCHDOG=1 to systemd while this thread turns, if it asks (WatchdogSec=).
        tokio::spawn(crate::notify::watchdog());
        pulse::start();
        let control_path = self.settings.run_dir.join("control.sock");
        let _ = std::fs::remove_file(&control_path);
        let control = tokio::net::UnixListener::bind(&control_path)
            .with_context(|| format!("binding {}", control_path.display()))?;
        std::fs::set_permissions(&control_path, std::fs::Permissions::from_mode(0o600))?;
        let (requests_tx, mut requests) = mpsc::channel(16);
        tokio::spawn(control::serve(control, requests_tx));

        let (changed_tx, mut changed) = mpsc::channel(16);
        let _watcher = watch::watch(&self.config.path, changed_tx)
            .map_err(
                |e| tracing::warn!(error = %format!("{e:#}"), "not watching the config file; use `reload` or SIGHUP"),
            )
            .ok();

        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;

        // The kernel first; frontends once it is ready (they would wait for it anyway, but their
        // readiness then means the chat works).
        let role = Role::Kernel {
            expect: self.expect.clone(),
            member: self.settings.cluster.clone().map(|cluster| crate::kernel::Membership {
                cluster,
                instance: format!("{:x}", crate::instance::new()),
            }),
        };
        let kernel = Handle::start(self.spec("kernel", role, Restart::Always));
        let state = tokio::select! {
            state = kernel.settled() => state,
            _ = term.recv() => State::Stopped,
            _ = int.recv() => State::Stopped,
        };
        self.kernel = Some(kernel);
        if state != State::Running {
            self.shutdown().await;
            bail!(
                "the kernel did not start; see {}",
                self.settings.log_dir.join("kernel.log").display()
            );
        }
        for server in self.config.servers.clone() {
            self.start_server(&server);
        }
        // Under systemd (Type=notify): READY=1 once every server is up, or has given up.
        let statuses: Vec<_> = self.servers.values().map(|h| h.status.clone()).collect();
        let mut all_settled = std::pin::pin!(futures_util::future::join_all(statuses.into_iter().map(child::settled)));
        let mut ready = false;

        let mut down = None;
        loop {
            tokio::select! {
                states = &mut all_settled, if !ready => {
                    ready = true;
                    let running = states.iter().filter(|s| **s == State::Running).count();
                    tracing::info!("ready: the kernel and {running} of {} servers running", states.len());
                    crate::notify::ready();
                }
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = hup.recv() => { tracing::info!("SIGHUP: reloading"); let _ = self.reload().await; }
                Some(()) = changed.recv() => {
                    watch::debounce(&mut changed).await;
                    tracing::info!(config = %self.config.path.display(), "config file changed: reloading");
                    let _ = self.reload().await; // logged either way
                }
                Some((request, reply)) = requests.recv() => {
                    if request == Request::Down {
                        tracing::info!("`down` requested: stopping");
                        down = Some(reply);
                        break;
                    }
                    let answer = self.handle(request).await;
                    reply.send(&answer).await;
                }
            }
        }
        self.shutdown().await;
        let _ = std::fs::remove_file(&control_path);
        if let Some(reply) = down {
            let stopped = Reply {
                ok: true,
                message: "stopped".into(),
                ..Reply::default()
            };
            reply.send(&stopped).await;
        }
        tracing::info!("supervisor stopped");
        Ok(())
    }

    /// Frontends first (all at once), then the kernel.
    async fn shutdown(&mut self) {
        crate::notify::stopping();
        let servers = std::mem::take(&mut self.servers);
        futures_util::future::join_all(servers.into_values().map(Handle::stop_and_end)).await;
        if let Some(kernel) = self.kernel.take() {
            kernel.stop_and_end().await;
        }
    }

    async fn handle(&mut self, request: Request) -> Reply {
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
        // A cluster member's census also counts each node's users, as `@NODE`.
        let (nodes, users): (Vec<_>, Vec<_>) = census
            .clone()
            .unwrap_or_default()
            .into_iter()
            .partition(|(name, _)| name.starts_with('@'));
        let users = census.map(|_| users);
        let cluster = self.settings.cluster.as_ref().map(|c| control::ClusterRow {
            redis: c.redis.clone(),
            node: c.node.clone(),
            nodes: nodes
                .into_iter()
                .map(|(name, users)| control::NodeRow {
                    name: name[1..].to_string(),
                    users,
                })
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

    /// Reads the config again and applies it by its [`plan`]. An invalid file, or an address
    /// that cannot be bound, changes nothing (and `status` says so until the file is fixed).
    async fn reload(&mut self) -> Result<String, String> {
        let mut refuse = |why: String, message: String| {
            // One log line per refusal, for grep.
            let line = message.replace("\n  ", " ").replace('\n', "; ");
            tracing::error!("reload refused: {line}");
            self.refused = Some(format!("{why}: {}", line.trim_end_matches("; nothing changed")));
            Err(message)
        };
        let new = match config::load(&self.config.path) {
            Ok(new) => new,
            Err(e) => return refuse("is invalid".into(), format!("{e:#}\nnothing changed")),
        };
        let plan = plan::diff(&self.config, &new);
        if plan.is_empty() {
            self.refused = None;
            let (at, what) = &self.applied;
            let message = format!(
                "nothing new: {} was applied at {} ({what})",
                self.config.path.display(),
                at.format("%H:%M:%S")
            );
            tracing::info!("{message}");
            return Ok(message);
        }
        if plan.supervisor_changed {
            tracing::warn!("changes to [supervisor] or [cluster] take effect at the next `up`");
        }
        let mut fresh = BTreeMap::new();
        for server in plan.to_bind() {
            match bind(server) {
                Ok(listener) => fresh.insert(server.name.clone(), Arc::new(listener)),
                Err(e) => return refuse("cannot be applied".into(), format!("{e:#}; nothing changed")),
            };
        }

        // A server changed in a way its next process can take over (not its kind or address)
        // hands its clients over, as `restart NAME` does; the others stop.
        let taken_over = |handle: &Handle| {
            plan.restarted.iter().any(|s| match &handle.spec.role {
                Role::Frontend { server, .. } => server.name == s.name && server.kind == s.kind,
                Role::Kernel { .. } => false,
            })
        };
        let stopping: Vec<Handle> = plan.to_stop().filter_map(|name| self.servers.remove(name)).collect();
        let (handing, ending): (Vec<Handle>, Vec<Handle>) = stopping.into_iter().partition(|h| taken_over(h));
        let handed = futures_util::future::join_all(handing.into_iter().map(|h| async move {
            let name = h.spec.name.clone();
            (name, h.hand_over_and_end().await)
        }));
        let (handed, _) = futures_util::future::join(
            handed,
            futures_util::future::join_all(ending.into_iter().map(Handle::stop_and_end)),
        )
        .await;
        let mut handed: BTreeMap<String, Custody> = handed.into_iter().collect();
        for name in &plan.removed {
            self.listeners.remove(name);
            tracing::info!(name, "removed");
        }
        self.listeners.extend(fresh);
        for server in plan.to_start() {
            if plan.added.contains(server) {
                tracing::info!(name = %server.name, "added");
            } else if handed.contains_key(&server.name) {
                tracing::info!(name = %server.name, "changed: its next process takes its clients over");
            } else {
                tracing::info!(name = %server.name, "changed: restarting");
            }
            let custody = handed.remove(&server.name);
            self.start_server_with(server, custody);
        }
        *self.expect.lock() = new.servers.iter().map(|s| s.name.clone()).collect();
        self.config = new;
        self.applied = (chrono::Local::now(), plan.changes());
        self.refused = None;
        let summary = format!("reloaded: {}", plan.summary());
        tracing::info!("{summary}");
        Ok(summary)
    }
}
