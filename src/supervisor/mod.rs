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
//! - [`plan`]: what an edit of the config changes (pure); [`watch`]: noticing the edit; `reload`:
//!   applying it.
//! - [`control`]: the control socket and the `status` table; `requests`: carrying out its
//!   requests; [`census`]: users per server.
//! - [`unavailable`]: answering the clients of a stopped or failed server ourselves.
//! - [`lock`]: one supervisor per config.
//! - [`logfile`]: daily-rotated log files with a stable live name, written off the async thread.
//! - [`logs`]: `chat-supervisor logs`: print and follow a log.

pub mod backoff;
mod census;
mod child;
pub(crate) mod control;
mod custody;
pub(crate) mod lifecycle;
mod lock;
mod logfile;
pub(crate) mod logs;
pub(crate) mod parked;
mod plan;
mod pulse;
mod reload;
mod requests;
mod spawn;
mod unavailable;
mod watch;
mod watchdog;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use crate::config::{self, Config, Restart, Server};
use child::{Handle, Role, Spec};
use control::{Reply, Request};
use custody::Custody;
use lifecycle::State;

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
        listeners.insert(server.settings.name.clone(), Arc::new(bind(server)?));
    }
    // A single thread: the parent-death signal is tied to the thread that forks each child.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(Supervisor::new(config, listeners).run())
}

/// Fails unless the cluster's Redis answers: `up` with an unreachable one is a mistake to say at
/// once (a Redis that goes away later is ridden out).
fn reach(cluster: &crate::config::Cluster) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime
        .block_on(crate::cluster::link::ping(&cluster.redis))
        .with_context(|| format!("[cluster] redis = {:?} does not answer", cluster.redis))
}

fn bind(server: &Server) -> Result<TcpListener> {
    let listener = TcpListener::bind(server.addr())
        .with_context(|| format!("server `{}`: cannot bind {}", server.settings.name, server.addr()))?;
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
        let names = config.servers.iter().map(|s| s.settings.name.clone()).collect();
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
        let listener = self.listeners[&server.settings.name].clone();
        let role = Role::Frontend {
            server: server.clone(),
            listener,
        };
        let spec = self.spec(&server.settings.name, role, server.restart);
        self.servers
            .insert(server.settings.name.clone(), Handle::start_with(spec, custody));
    }

    async fn run(mut self) -> Result<()> {
        tracing::info!(config = %self.config.path.display(), pid = std::process::id(), "supervisor starting");
        // WATCHDOG=1 to systemd while this thread turns, if it asks (WatchdogSec=).
        tokio::spawn(crate::notify::watchdog());
        pulse::start();
        let control_path = self.settings.run_dir.join("control.sock");
        let mut requests = serve_control(&control_path)?;
        let (changed_tx, mut changed) = mpsc::channel(16);
        let _watcher = watch::watch(&self.config.path, changed_tx)
            .map_err(
                |e| tracing::warn!(error = %format!("{e:#}"), "not watching the config file; use `reload` or SIGHUP"),
            )
            .ok();
        let mut signals = Signals::new()?;

        // The kernel first; frontends once it is ready (they would wait for it anyway, but their
        // readiness then means the chat works).
        if self.start_kernel(&mut signals).await != State::Running {
            self.shutdown().await;
            bail!(
                "the kernel did not start; see {}",
                self.settings.log_dir.join("kernel.log").display()
            );
        }
        for server in self.config.servers.clone() {
            self.start_server(&server);
        }
        let down = self.serve(&mut signals, &mut changed, &mut requests).await;
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

    /// Starts the kernel and waits until it runs or gives up (or `up` is told to stop meanwhile:
    /// then [`State::Stopped`]).
    async fn start_kernel(&mut self, signals: &mut Signals) -> State {
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
            _ = signals.term.recv() => State::Stopped,
            _ = signals.int.recv() => State::Stopped,
        };
        self.kernel = Some(kernel);
        state
    }

    /// Answers signals, config edits and control requests until told to stop; returns where to
    /// reply if that was `down`.
    async fn serve(
        &mut self,
        signals: &mut Signals,
        changed: &mut mpsc::Receiver<()>,
        requests: &mut mpsc::Receiver<control::Incoming>,
    ) -> Option<control::Responder> {
        // Under systemd (Type=notify): READY=1 once every server is up, or has given up.
        let statuses: Vec<_> = self.servers.values().map(|h| h.status.clone()).collect();
        let mut all_settled = std::pin::pin!(futures_util::future::join_all(statuses.into_iter().map(child::settled)));
        let mut ready = false;
        loop {
            tokio::select! {
                states = &mut all_settled, if !ready => {
                    ready = true;
                    let running = states.iter().filter(|s| **s == State::Running).count();
                    tracing::info!("ready: the kernel and {running} of {} servers running", states.len());
                    crate::notify::ready();
                }
                _ = signals.term.recv() => { tracing::info!("SIGTERM: stopping"); return None; }
                _ = signals.int.recv() => { tracing::info!("SIGINT: stopping"); return None; }
                _ = signals.hup.recv() => { tracing::info!("SIGHUP: reloading"); let _ = self.reload().await; }
                Some(()) = changed.recv() => {
                    watch::debounce(changed).await;
                    tracing::info!(config = %self.config.path.display(), "config file changed: reloading");
                    let _ = self.reload().await; // logged either way
                }
                Some((request, reply)) = requests.recv() => {
                    if request == Request::Down {
                        tracing::info!("`down` requested: stopping");
                        return Some(reply);
                    }
                    let answer = self.handle(request).await;
                    reply.send(&answer).await;
                }
            }
        }
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
}

/// The signals `up` answers: SIGTERM and SIGINT stop it, SIGHUP reloads the config.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Binds the control socket (ours alone) and serves it on a task of its own; returns where its
/// requests arrive.
fn serve_control(path: &Path) -> Result<mpsc::Receiver<control::Incoming>> {
    let _ = std::fs::remove_file(path);
    let control = tokio::net::UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (requests_tx, requests) = mpsc::channel(16);
    tokio::spawn(control::serve(control, requests_tx));
    Ok(requests)
}
