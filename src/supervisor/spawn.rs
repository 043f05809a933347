//! Starting a child process: its command line, its own process group with a parent-death signal,
//! its notify socket, the listening socket and (a frontend) the handoff socket it inherits, and its
//! output copied into its log file.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::UnixDatagram;

use super::child::{Role, Spec};
use super::logfile::ChildLog;
use crate::frontend::args::ServeArgs;

/// A started child process.
pub struct Process {
    child: tokio::process::Child,
    pub pid: u32,
    pub started: Instant,
    /// The tasks copying its stdout and stderr into its log.
    output: Vec<tokio::task::JoinHandle<()>>,
}

impl Process {
    /// Starts the child of `spec`, its output going to `log`; with the socket where its
    /// `READY=1` and `WATCHDOG=1` arrive, and (a frontend) our end of its handoff socket.
    pub fn spawn(spec: &Spec, log: &ChildLog) -> Result<(Self, UnixDatagram, Option<OwnedFd>)> {
        let _ = std::fs::remove_file(&spec.notify_socket);
        let notify = UnixDatagram::bind(&spec.notify_socket)
            .with_context(|| format!("binding {}", spec.notify_socket.display()))?;
        let mut command = command(spec)?;
        let handoff = match spec.role {
            Role::Frontend { .. } => Some(pass_handoff_socket(&mut command)?),
            Role::Kernel { .. } => None,
        };
        let mut child = tokio::process::Command::from(command)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", spec.name))?;
        let pid = child.id().context("a child without a pid")?;
        let stdout = child.stdout.take().map(|p| Box::new(p) as Output);
        let stderr = child.stderr.take().map(|p| Box::new(p) as Output);
        let output = [stdout, stderr]
            .into_iter()
            .flatten()
            .map(|pipe| tokio::spawn(copy_to_log(pipe, log.clone())))
            .collect();
        let started = Instant::now();
        Ok((
            Self {
                child,
                pid,
                started,
                output,
            },
            notify,
            handoff,
        ))
    }

    /// Waits (a second at most: something it started may hold its pipes) until its output is in
    /// its log.
    pub async fn drained(&mut self) {
        let copies = futures_util::future::join_all(self.output.drain(..));
        let _ = tokio::time::timeout(Duration::from_secs(1), copies).await;
    }

    /// Sends `signal` to its process group (a stopped process gets SIGKILL too, and anything it
    /// started goes with it).
    pub fn signal(&self, signal: Signal) {
        let _ = killpg(Pid::from_raw(self.pid as i32), signal);
    }

    /// Waits for it to exit and reaps it; what it left in its group is killed.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        self.signal(Signal::SIGKILL);
        status
    }
}

/// "exit code 1", "killed by SIGKILL".
pub fn describe(status: &std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Ok(status) = status else {
        return "unknown status".into();
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!(
            "killed by {}",
            Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.as_str().to_string())
        ),
        _ => status.to_string(),
    }
}

type Output = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// This binary's path, as it was when the supervisor started: a binary installed over it since
/// (`cargo install`, a package upgrade) is what the next child runs, so that `restart --all`
/// moves every child to it. (Asked later, Linux would name the replaced file, "… (deleted)".)
static EXE: std::sync::OnceLock<std::io::Result<std::path::PathBuf>> = std::sync::OnceLock::new();

/// Notes this binary's path ([`EXE`]); call it as the supervisor starts.
pub fn note_exe() {
    EXE.get_or_init(std::env::current_exe);
}

fn command(spec: &Spec) -> Result<std::process::Command> {
    let exe = EXE.get_or_init(std::env::current_exe);
    let exe = exe
        .as_ref()
        .map_err(|e| anyhow::anyhow!("finding our own binary: {e}"))?;
    let mut command = std::process::Command::new(exe);
    match &spec.role {
        Role::Kernel { expect, member } => {
            command.arg("kernel").arg("--socket").arg(&spec.kernel_socket);
            let expect = expect.lock().join(",");
            if !expect.is_empty() {
                command.arg("--expect").arg(expect);
            }
            if let Some(m) = member {
                command.args([
                    "--redis",
                    &m.cluster.redis,
                    "--node",
                    &m.cluster.node,
                    "--instance",
                    &m.instance,
                ]);
            }
        }
        Role::Frontend { server, listener } => {
            let args = ServeArgs::for_server(server, &spec.kernel_socket);
            command.arg("serve").args(args.to_args());
            crate::frontend::listen::pass_listener(&mut command, listener.as_ref(), &server.settings.name)
                .context("passing the listening socket")?;
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
    crate::sys::exec::die_with_parent(&mut command);
    Ok(command)
}

/// Gives the child its end of a new handoff socket as fd [`handoff::FD`](crate::handoff::FD),
/// named by `$CHAT_HANDOFF_FD`; returns our end. Call it after
/// [`pass_listener`](crate::frontend::listen::pass_listener) (fd 3).
fn pass_handoff_socket(command: &mut std::process::Command) -> Result<OwnedFd> {
    use crate::handoff::{ENV, FD};
    let (ours, theirs) = crate::handoff::socket::pair().context("creating a handoff socket")?;
    crate::sys::exec::pass_fd(command, &theirs, FD).context("passing a handoff socket")?;
    command.env(ENV, FD.to_string());
    Ok(ours)
}

/// Copies a child's output into its log file, panic messages included.
async fn copy_to_log(mut pipe: Output, mut log: ChildLog) {
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            return;
        }
        log.write(&buf[..n]).await;
    }
}
