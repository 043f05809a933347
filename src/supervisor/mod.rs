//! The supervisor (`chat-supervisor up`): loads the config, binds every listening socket itself,
//! starts the kernel and then one frontend per server, keeps them running, answers the control
//! socket, applies config edits as a diff, and stops everything in order.
//!
//! - [`child`]: one child process and the task that restarts it.
//! - [`backoff`]: restart delays and the crash-loop rule (pure).
//! - [`watchdog`]: notify messages and when a silent child counts as hung (pure).
//! - [`control`]: the control socket and the `status` table.
//! - [`logfile`]: daily-rotated log files with a stable live name, written off the async thread.
//! - [`logs`]: `chat-supervisor logs`: print and follow a log.

pub mod backoff;
pub mod child;
pub mod control;
pub mod logfile;
pub mod logs;
pub mod watchdog;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use nix::fcntl::{Flock, FlockArg};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use crate::config::{self, Config, Restart, Server};
use crate::wire::{self, Downstream, Upstream};
use child::{Ctl, Handle, Role, Spec, State};
use control::{Reply, Request, Row};

/// Quiet time after a change to the config file before it is read.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How long `status` waits for the kernel's user counts.
const CENSUS_TIMEOUT: Duration = Duration::from_secs(1);

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
    crate::kernel::socket::private_dir(&config.run_dir)?;
    let _lock = lock(&config.run_dir, &config.path)?;

    // Every address is bound before any child starts, so a port in use stops `up` cleanly.
    let mut listeners = BTreeMap::new();
    for server in &config.servers {
        listeners.insert(server.name.clone(), Arc::new(bind(server)?));
    }
    // A single thread: the parent-death signal is tied to the thread that forks each child.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(Supervisor::new(config, listeners).run())
}

/// Holds the lock file open (and locked) for as long as `up` runs.
struct Lock(#[allow(dead_code)] Flock<File>);

fn lock(run_dir: &Path, config: &Path) -> Result<Lock> {
    let path = run_dir.join("supervisor.lock");
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "a supervisor is already running for {} (pid {}); stop it with `chat-supervisor down`",
                config.display(),
                pid.trim()
            );
        }
    };
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Lock(file))
}

fn bind(server: &Server) -> Result<TcpListener> {
    let listener = TcpListener::bind(server.addr())
        .with_context(|| format!("server `{}`: cannot bind {}", server.name, server.addr()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

struct Supervisor {
    config: Config,
    /// The servers a restarted kernel waits for; shared with the kernel's spec.
    expect: Arc<std::sync::Mutex<Vec<String>>>,
    kernel: Option<Handle>,
    servers: BTreeMap<String, Handle>,
    listeners: BTreeMap<String, Arc<TcpListener>>,
}

impl Supervisor {
    fn new(config: Config, listeners: BTreeMap<String, Arc<TcpListener>>) -> Self {
        let names = config.servers.iter().map(|s| s.name.clone()).collect();
        Self {
            config,
            expect: Arc::new(std::sync::Mutex::new(names)),
            kernel: None,
            servers: BTreeMap::new(),
            listeners,
        }
    }

    fn kernel_socket(&self) -> PathBuf {
        self.config.run_dir.join("kernel.sock")
    }

    fn spec(&self, name: &str, role: Role, restart: Restart) -> Spec {
        Spec {
            name: name.to_string(),
            role,
            restart,
            kernel_socket: self.kernel_socket(),
            notify_socket: self.config.run_dir.join(format!("{name}.notify")),
            watchdog: self.config.watchdog,
            log_dir: self.config.log_dir.clone(),
            log_keep: self.config.log_keep,
        }
    }

    fn start_server(&mut self, server: &Server) {
        let listener = self.listeners[&server.name].clone();
        let role = Role::Frontend {
            server: server.clone(),
            listener,
        };
        let spec = self.spec(&server.name, role, server.restart);
        self.servers.insert(server.name.clone(), Handle::start(spec));
    }

    async fn run(mut self) -> Result<()> {
        tracing::info!(config = %self.config.path.display(), pid = std::process::id(), "supervisor starting");
        let control_path = self.config.run_dir.join("control.sock");
        let _ = std::fs::remove_file(&control_path);
        let control = tokio::net::UnixListener::bind(&control_path)
            .with_context(|| format!("binding {}", control_path.display()))?;
        std::fs::set_permissions(&control_path, std::fs::Permissions::from_mode(0o600))?;
        let (requests_tx, mut requests) = mpsc::channel(16);
        tokio::spawn(control::serve(control, requests_tx));

        let (changed_tx, mut changed) = mpsc::channel(16);
        let _watcher = watch(&self.config.path, changed_tx)
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
        };
        let mut kernel = Handle::start(self.spec("kernel", role, Restart::Always));
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
                self.config.log_dir.join("kernel.log").display()
            );
        }
        for server in self.config.servers.clone() {
            self.start_server(&server);
        }

        let mut down = None;
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = hup.recv() => { tracing::info!("SIGHUP: reloading"); let _ = self.reload().await; }
                Some(()) = changed.recv() => {
                    // Debounce: editors write in several steps.
                    while tokio::time::timeout(DEBOUNCE, changed.recv()).await.is_ok_and(|m| m.is_some()) {}
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
        let servers = std::mem::take(&mut self.servers);
        futures_util::future::join_all(servers.values().map(|h| h.request(Ctl::Stop))).await;
        let kernel = self.kernel.take();
        if let Some(kernel) = &kernel {
            kernel.request(Ctl::Stop).await;
        }
        for handle in servers.values().chain(&kernel) {
            let _ = std::fs::remove_file(&handle.spec.notify_socket);
        }
    }

    async fn handle(&mut self, request: Request) -> Reply {
        let ok = |message: String| Reply {
            ok: true,
            message,
            ..Reply::default()
        };
        let fail = |message: String| Reply {
            ok: false,
            message,
            ..Reply::default()
        };
        match request {
            Request::Status => Reply {
                ok: true,
                message: String::new(),
                servers: self.status().await,
            },
            Request::Reload => match self.reload().await {
                Ok(summary) => ok(summary),
                Err(e) => fail(e),
            },
            Request::Restart { name } | Request::Stop { name } | Request::Start { name }
                if self.handle_of(&name).is_none() =>
            {
                fail(format!("no server named `{name}` (see `chat-supervisor status`)"))
            }
            Request::Restart { name } => {
                self.handle_of(&name).expect("checked").request(Ctl::Restart).await;
                tracing::info!(name, "restarted on request");
                ok(format!("restarting {name}"))
            }
            Request::Stop { name } => {
                self.handle_of(&name).expect("checked").request(Ctl::Stop).await;
                tracing::info!(name, "stopped on request");
                ok(format!("stopped {name}"))
            }
            Request::Start { name } => {
                self.handle_of(&name).expect("checked").request(Ctl::Start).await;
                tracing::info!(name, "started on request");
                ok(format!("starting {name}"))
            }
            Request::Down => unreachable!("handled by the loop"),
        }
    }

    fn handle_of(&self, name: &str) -> Option<&Handle> {
        if name == "kernel" {
            self.kernel.as_ref()
        } else {
            self.servers.get(name)
        }
    }

    async fn status(&self) -> Vec<Row> {
        let users = census(&self.kernel_socket()).await;
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
        rows
    }

    /// Reads the config again and applies it as a diff. An invalid file changes nothing.
    async fn reload(&mut self) -> Result<String, String> {
        let mut new = match config::load(&self.config.path) {
            Ok(new) => new,
            Err(e) => {
                let message = format!("{e:#}\nnothing changed");
                // One log line per refusal, for grep.
                tracing::error!("reload refused: {}", message.replace("\n  ", " ").replace('\n', "; "));
                return Err(message);
            }
        };
        if (new.log_dir != self.config.log_dir)
            || (new.run_dir != self.config.run_dir)
            || new.log_keep != self.config.log_keep
            || new.watchdog != self.config.watchdog
        {
            tracing::warn!("changes to [supervisor] take effect at the next `up`");
            // Until then, servers started by this reload run like the others (the kernel socket
            // above all stays where the kernel is).
            new.log_dir = self.config.log_dir.clone();
            new.run_dir = self.config.run_dir.clone();
            new.log_keep = self.config.log_keep;
            new.watchdog = self.config.watchdog;
        }
        let old: BTreeMap<&str, &Server> = self.config.servers.iter().map(|s| (s.name.as_str(), s)).collect();
        let added: Vec<Server> = new
            .servers
            .iter()
            .filter(|s| !old.contains_key(s.name.as_str()))
            .cloned()
            .collect();
        let changed: Vec<Server> = new
            .servers
            .iter()
            .filter(|s| old.get(s.name.as_str()).is_some_and(|o| *o != *s))
            .cloned()
            .collect();
        let removed: Vec<String> = old
            .keys()
            .filter(|name| !new.servers.iter().any(|s| s.name == **name))
            .map(|name| name.to_string())
            .collect();

        // Bind every new address first: if one fails, nothing changes.
        let mut fresh = BTreeMap::new();
        for server in added.iter().chain(&changed) {
            // Same host and port as configured before (port 0 included): keep the socket we have.
            let same_address = old.get(server.name.as_str()).is_some_and(|o| o.addr() == server.addr());
            if same_address {
                continue;
            }
            match bind(server) {
                Ok(listener) => {
                    fresh.insert(server.name.clone(), Arc::new(listener));
                }
                Err(e) => {
                    let message = format!("{e:#}; nothing changed");
                    tracing::error!("reload refused: {message}");
                    return Err(message);
                }
            }
        }

        for name in &removed {
            if let Some(handle) = self.servers.remove(name) {
                handle.request(Ctl::Stop).await;
            }
            self.listeners.remove(name);
            tracing::info!(name, "removed");
        }
        for server in &changed {
            if let Some(handle) = self.servers.remove(&server.name) {
                handle.request(Ctl::Stop).await;
            }
            if let Some(listener) = fresh.remove(&server.name) {
                self.listeners.insert(server.name.clone(), listener);
            }
            tracing::info!(name = %server.name, "changed: restarting");
            self.start_server(server);
        }
        for server in &added {
            self.listeners
                .insert(server.name.clone(), fresh.remove(&server.name).expect("bound above"));
            tracing::info!(name = %server.name, "added");
            self.start_server(server);
        }
        let unchanged = new.servers.len() - added.len() - changed.len();
        *self.expect.lock().unwrap_or_else(|e| e.into_inner()) = new.servers.iter().map(|s| s.name.clone()).collect();
        self.config = new;
        let summary = format!(
            "reloaded: {} added, {} removed, {} changed, {unchanged} unchanged",
            added.len(),
            removed.len(),
            changed.len()
        );
        tracing::info!("{summary}");
        Ok(summary)
    }
}

/// Asks the kernel how many users each frontend has.
async fn census(socket: &Path) -> Option<Vec<(String, u64)>> {
    let ask = async {
        let stream = tokio::net::UnixStream::connect(socket).await.ok()?;
        let mut framed = Framed::new(stream, wire::codec());
        let mut buf = bytes::BytesMut::new();
        Upstream::Census.encode(&mut buf);
        use tokio::io::AsyncWriteExt;
        framed.get_mut().write_all(&buf).await.ok()?;
        while let Some(Ok(body)) = framed.next().await {
            if let Ok(Downstream::Census { users }) = Downstream::decode(&body) {
                return Some(users);
            }
        }
        None
    };
    tokio::time::timeout(CENSUS_TIMEOUT, ask).await.ok().flatten()
}

/// Watches the config file's folder (editors replace files rather than write them) and signals
/// `changed` for events on the file itself.
fn watch(path: &Path, changed: mpsc::Sender<()>) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let name = path.file_name().map(|n| n.to_os_string());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            let _ = changed.try_send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
