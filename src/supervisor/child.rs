//! One supervised child process (the kernel or a frontend) and the task that keeps it running:
//! spawn it in its own process group with a parent-death signal, wait for `READY=1`, read its
//! `WATCHDOG=1` for as long as it lives and SIGKILL it when they stop, restart it by policy with
//! backoff, stop it with SIGTERM then SIGKILL.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::UnixDatagram;
use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::{self, Backoff, Verdict};
use super::logfile::DailyFile;
use super::watchdog::{self, Notice, Watchdog};
use crate::config::{Restart, Server};

/// How long a child may take to report `READY=1`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child may take to exit after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// What a child is.
#[derive(Debug, Clone)]
pub enum Role {
    /// The kernel; after a restart it waits for the hellos of the servers named in `expect`
    /// (kept current by the supervisor as the config changes).
    Kernel { expect: Arc<Mutex<Vec<String>>> },
    /// A frontend serving `server` on the supervisor's `listener`.
    Frontend { server: Server, listener: Arc<TcpListener> },
}

/// Everything needed to start a child, again and again.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub role: Role,
    pub restart: Restart,
    pub kernel_socket: PathBuf,
    /// Where its `READY=1` and `WATCHDOG=1` arrive.
    pub notify_socket: PathBuf,
    /// Longest silence between two `WATCHDOG=1` before it is killed; `None`: no watchdog.
    pub watchdog: Option<Duration>,
    pub log_dir: PathBuf,
    pub log_keep: usize,
}

impl Spec {
    pub fn kind(&self) -> String {
        match &self.role {
            Role::Kernel { .. } => "kernel".into(),
            Role::Frontend { server, .. } => server.kind.to_string(),
        }
    }

    pub fn address(&self) -> String {
        match &self.role {
            Role::Kernel { .. } => self.kernel_socket.display().to_string(),
            Role::Frontend { listener, server } => listener
                .local_addr()
                .map_or_else(|_| server.addr().to_string(), |a| a.to_string()),
        }
    }
}

/// The lifecycle of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Spawned; waiting for it to report ready.
    Starting,
    /// Ready and serving.
    Running,
    /// Exited; waiting out the backoff delay before the next start.
    Backoff,
    /// Crash-looping: not restarted until the cool-down passes or `restart NAME`.
    Failed,
    /// Being stopped (SIGTERM sent).
    Stopping,
    /// Stopped on request, or exited and not to be restarted by its policy.
    Stopped,
}

crate::spelled!(State, "state", {
    State::Starting => "starting",
    State::Running => "running",
    State::Backoff => "backoff",
    State::Failed => "failed",
    State::Stopping => "stopping",
    State::Stopped => "stopped",
});

/// What `status` shows of a child.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub pid: Option<u32>,
    /// When it last became ready (for uptime).
    pub since: Option<Instant>,
    /// Starts after the first.
    pub restarts: u32,
}

/// Requests to a child's task; the reply is sent once the request is carried out.
pub enum Ctl {
    Start(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
}

/// The supervisor's handle on a child's task. Dropping `ctl` ends the task (the child is stopped).
pub struct Handle {
    pub spec: Spec,
    pub ctl: mpsc::Sender<Ctl>,
    pub status: watch::Receiver<Status>,
}

impl Handle {
    /// Starts the task, which starts the child.
    pub fn start(spec: Spec) -> Self {
        let (ctl, ctl_rx) = mpsc::channel(8);
        let (status_tx, status) = watch::channel(Status {
            state: State::Starting,
            pid: None,
            since: None,
            restarts: 0,
        });
        tokio::spawn(supervise(spec.clone(), ctl_rx, status_tx));
        Self { spec, ctl, status }
    }

    /// Sends a request and waits for it to be carried out.
    pub async fn request(&self, make: impl FnOnce(oneshot::Sender<()>) -> Ctl) {
        let (done, wait) = oneshot::channel();
        if self.ctl.send(make(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Waits until the child is running, or has given up (failed or stopped).
    pub async fn settled(&mut self) -> State {
        let status = self
            .status
            .wait_for(|s| matches!(s.state, State::Running | State::Failed | State::Stopped))
            .await;
        status.map_or(State::Stopped, |s| s.state)
    }
}

/// What ended a wait on a running (or starting) child.
enum Wake {
    Exited(std::io::Result<ExitStatus>),
    Ctl(Option<Ctl>),
}

async fn supervise(spec: Spec, ctl: mpsc::Receiver<Ctl>, status: watch::Sender<Status>) {
    keep_running(&spec, ctl, status).await;
    let _ = std::fs::remove_file(&spec.notify_socket);
}

async fn keep_running(spec: &Spec, mut ctl: mpsc::Receiver<Ctl>, status: watch::Sender<Status>) {
    let spec = spec.clone();
    let mut backoff = Backoff::default();
    let mut run = true;
    let mut starts = 0u32;
    let log = match DailyFile::open(&spec.log_dir, &spec.name, spec.log_keep) {
        Ok(log) => log.shared(),
        Err(e) => {
            tracing::error!(name = %spec.name, error = %e, "cannot open the child's log file");
            return;
        }
    };
    let set = |state: State, pid: Option<u32>| {
        status.send_modify(|s| {
            s.state = state;
            s.pid = pid;
            s.since = (state == State::Running).then(Instant::now);
        })
    };
    loop {
        if !run {
            set(State::Stopped, None);
            match ctl.recv().await {
                Some(Ctl::Start(done) | Ctl::Restart(done)) => {
                    run = true;
                    backoff.reset();
                    let _ = done.send(());
                }
                Some(Ctl::Stop(done)) => {
                    let _ = done.send(());
                    continue;
                }
                None => return,
            }
        }

        if starts > 0 {
            status.send_modify(|s| s.restarts += 1);
        }
        starts += 1;
        set(State::Starting, None);
        let started = Instant::now();
        let mut child = match spawn(&spec, &log) {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(name = %spec.name, error = %format!("{e:#}"), "could not start");
                match wait_after_exit(&spec, &mut backoff, &mut ctl, &status, started, None).await {
                    Next::Go => continue,
                    Next::Halt => {
                        run = false;
                        continue;
                    }
                    Next::End => return,
                }
            }
        };
        let pid = child.process.id();
        set(State::Starting, pid);

        // Starting, then running: until it exits, a request comes, it misses its READY=1
        // deadline or its watchdog. A `start` of a child that is already starting or running is
        // answered and changes nothing.
        let mut ready_by = Some(tokio::time::Instant::now() + READY_TIMEOUT);
        let mut watchdog = Watchdog::new(spec.watchdog, tokio::time::Instant::now());
        let mut listening = true;
        let mut buf = [0u8; 256];
        let wake = loop {
            tokio::select! {
                received = child.notify.recv(&mut buf), if listening => match received {
                    Ok(n) => {
                        for notice in watchdog::notices(&buf[..n]) {
                            match notice {
                                Notice::Alive => watchdog.alive(tokio::time::Instant::now()),
                                Notice::Ready if ready_by.take().is_some() => {
                                    set(State::Running, pid);
                                    announce(&spec, pid);
                                    if let Role::Kernel { .. } = spec.role {
                                        // Once it has served, never park it: every frontend
                                        // needs it. Before that, a crash loop still ends `up`
                                        // with a clear error instead of retrying forever.
                                        backoff.never_fail();
                                    }
                                }
                                // A frontend says it again after each new kernel.
                                Notice::Ready => {}
                                Notice::Stopping => tracing::debug!(name = %spec.name, pid, "stopping"),
                            }
                        }
                    }
                    Err(e) => {
                        // Its watchdog, if any, will have its way.
                        tracing::warn!(name = %spec.name, error = %e, "notify socket failed");
                        listening = false;
                    }
                },
                _ = sleep_until(ready_by) => {
                    tracing::error!(name = %spec.name, pid, "no READY=1 within {READY_TIMEOUT:?}; killing it");
                    child.stop(&spec.name).await;
                    break Wake::Exited(child.process.wait().await);
                }
                _ = sleep_until(watchdog.deadline()) => {
                    let silence = watchdog.limit().unwrap_or_default().as_secs_f64();
                    tracing::error!("watchdog: {} hung (no WATCHDOG=1 for {silence}s); killing it", spec.name);
                    break Wake::Exited(child.kill().await);
                }
                exited = child.process.wait() => break Wake::Exited(exited),
                request = ctl.recv() => match request {
                    Some(Ctl::Start(done)) => { let _ = done.send(()); }
                    other => break Wake::Ctl(other),
                },
            }
        };

        match wake {
            Wake::Ctl(request) => {
                set(State::Stopping, pid);
                child.stop(&spec.name).await;
                match request {
                    Some(Ctl::Stop(done)) => {
                        run = false;
                        let _ = done.send(());
                    }
                    Some(Ctl::Restart(done)) => {
                        backoff.reset();
                        let _ = done.send(());
                    }
                    Some(Ctl::Start(_)) => unreachable!("answered while it ran"),
                    None => {
                        set(State::Stopped, None);
                        return;
                    }
                }
            }
            Wake::Exited(exited) => {
                let exited = exited.ok();
                let how = exited.map_or_else(|| "unknown status".to_string(), describe);
                tracing::warn!(name = %spec.name, pid, ran = ?started.elapsed(), "exited: {how}");
                match wait_after_exit(&spec, &mut backoff, &mut ctl, &status, started, exited).await {
                    Next::Go => {}
                    Next::Halt => run = false,
                    Next::End => return,
                }
            }
        }
    }
}

enum Next {
    /// Start the child again.
    Go,
    /// Leave it stopped.
    Halt,
    /// The supervisor let go of this child.
    End,
}

/// After an exit on its own: apply the restart policy, the backoff delay and the crash-loop rule,
/// while still answering requests.
async fn wait_after_exit(
    spec: &Spec,
    backoff: &mut Backoff,
    ctl: &mut mpsc::Receiver<Ctl>,
    status: &watch::Sender<Status>,
    started: Instant,
    exited: Option<ExitStatus>,
) -> Next {
    let clean = exited.is_some_and(|s| s.success());
    match spec.restart {
        Restart::Never => return Next::Halt,
        Restart::OnFailure if clean => return Next::Halt,
        _ => {}
    }
    let (state, delay) = match backoff.failed(Instant::now(), started.elapsed()) {
        Verdict::Retry(delay) => (State::Backoff, delay),
        Verdict::Failed => {
            tracing::error!(
                name = %spec.name,
                "FAILED: crash loop ({} exits within {:?}); next try in {:?}, or now with `chat-supervisor restart {}`",
                backoff::LOOP_FAILURES,
                backoff::WINDOW,
                backoff::COOL_DOWN,
                spec.name
            );
            (State::Failed, backoff::COOL_DOWN)
        }
    };
    status.send_modify(|s| {
        s.state = state;
        s.pid = None;
        s.since = None;
    });
    tokio::select! {
        _ = tokio::time::sleep(delay) => Next::Go,
        request = ctl.recv() => match request {
            Some(Ctl::Stop(done)) => {
                let _ = done.send(());
                Next::Halt
            }
            Some(Ctl::Start(done) | Ctl::Restart(done)) => {
                backoff.reset();
                let _ = done.send(());
                Next::Go
            }
            None => Next::End,
        },
    }
}

/// The line users grep for, written each time a server becomes ready.
fn announce(spec: &Spec, pid: Option<u32>) {
    let pid = pid.unwrap_or(0);
    match &spec.role {
        Role::Kernel { .. } => tracing::info!("ready name=kernel socket={} pid={pid}", spec.kernel_socket.display()),
        Role::Frontend { server, .. } => tracing::info!(
            "listening name={} kind={} addr={} pid={pid}",
            server.name,
            server.kind,
            spec.address()
        ),
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!(
            "killed by {}",
            Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.as_str().to_string())
        ),
        _ => status.to_string(),
    }
}

/// A started child process.
struct Running {
    process: tokio::process::Child,
    notify: UnixDatagram,
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Running {
    /// SIGKILL to its process group at once (a stopped process dies too), and reap it.
    async fn kill(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(pid) = self.process.id() {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        self.process.wait().await
    }

    /// SIGTERM to its process group, SIGKILL after [`GRACE`], and reap it.
    async fn stop(&mut self, name: &str) {
        let Some(pid) = self.process.id() else {
            return; // already reaped
        };
        let group = Pid::from_raw(pid as i32);
        let _ = killpg(group, Signal::SIGTERM);
        match tokio::time::timeout(GRACE, self.process.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(name, pid, "did not stop within {GRACE:?} of SIGTERM; sending SIGKILL");
                let _ = killpg(group, Signal::SIGKILL);
                let _ = self.process.wait().await;
            }
        }
        // Anything it left in its group goes too.
        let _ = killpg(group, Signal::SIGKILL);
    }
}

fn spawn(spec: &Spec, log: &Arc<Mutex<DailyFile>>) -> Result<Running> {
    let _ = std::fs::remove_file(&spec.notify_socket);
    let notify =
        UnixDatagram::bind(&spec.notify_socket).with_context(|| format!("binding {}", spec.notify_socket.display()))?;
    let exe = std::env::current_exe().context("finding our own binary")?;
    let mut command = std::process::Command::new(exe);
    match &spec.role {
        Role::Kernel { expect } => {
            command.arg("kernel").arg("--socket").arg(&spec.kernel_socket);
            let expect = expect.lock().unwrap_or_else(|e| e.into_inner()).join(",");
            if !expect.is_empty() {
                command.arg("--expect").arg(expect);
            }
        }
        Role::Frontend { server, listener } => {
            let args = crate::frontend::args::ServeArgs::for_server(server, &spec.kernel_socket);
            command.arg("serve").args(args.to_args());
            crate::frontend::listen::hand_over(&mut command, listener.as_ref(), &server.name);
        }
    }
    // Ours, if systemd watches us, are not the child's.
    command.env_remove("WATCHDOG_USEC").env_remove("WATCHDOG_PID");
    if let Some(limit) = spec.watchdog {
        command.env("WATCHDOG_USEC", limit.as_micros().to_string());
    }
    command
        .env("NOTIFY_SOCKET", &spec.notify_socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: between fork and exec this only makes async-signal-safe calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            // The supervisor dying, even by SIGKILL, takes the child with it. The signal is tied to
            // the forking thread: `up` runs on a single-threaded runtime, so that is the main thread.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other("the supervisor died before the child started"));
            }
            Ok(())
        });
    }
    let mut process = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", spec.name))?;
    for pipe in [
        process
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        process
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        tokio::spawn(copy_to_log(pipe, log.clone()));
    }
    Ok(Running { process, notify })
}

/// Copies a child's output into its log file, panic messages included.
async fn copy_to_log(mut pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>, log: Arc<Mutex<DailyFile>>) {
    use std::io::Write;
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            return;
        }
        let mut file = log.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.write_all(&buf[..n]);
    }
}
