//! The command line: what each subcommand takes, and running it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::frontend::{self, args::ServeArgs};
use crate::supervisor::control::{Reply, Request};

#[derive(Debug, Parser)]
#[command(
    name = "chat-supervisor",
    version,
    about = "One chat, many frontends, each its own process."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The config file option every supervisor command takes.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(short, long = "config", default_value = "servers.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the kernel and every server in the config, and keep them running (foreground).
    Up(ConfigArg),
    /// Validate the config and print what `up` would run.
    Check(ConfigArg),
    /// Show every server: kind, address, pid, state, uptime, restarts, users.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the config and apply the changes (as a saved edit or SIGHUP would).
    Reload(ConfigArg),
    /// Restart one server (or `kernel`), clearing a failed state.
    Restart {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stop one server (or `kernel`) until `start`.
    Stop {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Start a stopped server (or `kernel`).
    Start {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stop everything and the supervisor itself.
    Down(ConfigArg),
    /// Run the kernel: the one owner of the chat state, serving frontends on a Unix socket.
    #[command(hide = true)]
    Kernel {
        /// The Unix socket to serve on; its directory must be private to this user.
        #[arg(long)]
        socket: PathBuf,
        /// Frontends whose hellos to wait for before applying any input (after a restart).
        #[arg(long, value_delimiter = ',')]
        expect: Vec<String>,
    },
    /// Run one frontend: a telnet (tcp) or web (ws) server attached to the kernel.
    #[command(hide = true)]
    Serve(ServeArgs),
}

impl Cli {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Up(c) => crate::supervisor::up(&c.config),
            Command::Check(c) => check(&c.config),
            Command::Status { config, json } => {
                let reply = control(&config.config, &Request::Status)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&reply.servers)?);
                } else {
                    print!("{}", crate::supervisor::control::table(&reply.servers));
                }
                Ok(())
            }
            Command::Reload(c) => say(control(&c.config, &Request::Reload)?),
            Command::Restart { name, config } => say(control(&config.config, &Request::Restart { name })?),
            Command::Stop { name, config } => say(control(&config.config, &Request::Stop { name })?),
            Command::Start { name, config } => say(control(&config.config, &Request::Start { name })?),
            Command::Down(c) => say(control(&c.config, &Request::Down)?),
            Command::Kernel { socket, expect } => {
                init_logging();
                raise_fd_limit();
                runtime(|shutdown| async move { crate::kernel::run(&socket, expect, shutdown).await })
            }
            Command::Serve(args) => {
                let options = args.options();
                init_logging();
                raise_fd_limit();
                runtime(|shutdown| frontend::run(options, shutdown))
            }
        }
    }
}

/// `check`: every problem, or the plan.
fn check(path: &Path) -> Result<()> {
    let config = crate::config::load(path)?;
    println!("{} is valid. `up` would run:", path.display());
    println!("  kernel  {}", config.run_dir.join("kernel.sock").display());
    for s in &config.servers {
        println!(
            "  {}  {} on {}  color={} max_line={} max_connections={} max_connections_per_ip={} \
             input_rate={} input_burst={} send_timeout={}s restart={}",
            s.name,
            s.kind,
            s.addr(),
            s.color,
            s.max_line,
            s.max_connections,
            s.max_connections_per_ip,
            s.input_rate,
            s.input_burst,
            s.send_timeout.as_secs(),
            s.restart,
        );
        if s.kind == frontend::Kind::Ws {
            println!(
                "      handshake_timeout={}s allowed_hosts={:?}",
                s.handshake_timeout.as_secs(),
                s.allowed_hosts
            );
        }
    }
    println!(
        "  logs in {}, sockets in {}, watchdog {}",
        config.log_dir.display(),
        config.run_dir.display(),
        config
            .watchdog
            .map_or_else(|| "off".to_string(), |w| format!("{}s", w.as_secs()))
    );
    Ok(())
}

/// Sends one control request to the supervisor running `config`.
fn control(config: &Path, request: &Request) -> Result<Reply> {
    // The control socket lives in the config's run_dir; an invalid config still finds the default.
    let run_dir = match crate::config::load(config) {
        Ok(c) => c.run_dir,
        Err(_) => config
            .parent()
            .unwrap_or(Path::new("."))
            .join(crate::config::DEFAULT_RUN_DIR),
    };
    let path = run_dir.join("control.sock");
    // `down` waits for every child to stop (each has a grace period).
    let timeout = Duration::from_secs(60);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(crate::supervisor::control::call(&path, request, timeout))
}

fn say(reply: Reply) -> Result<()> {
    if reply.ok {
        println!("{}", reply.message);
        Ok(())
    } else {
        anyhow::bail!("{}", reply.message)
    }
}

/// A server holds a descriptor per client: lift the soft limit on open files to the hard one.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit");
    }
}

/// Logs go to stderr; the supervisor files them under `logs/`. `RUST_LOG` filters as usual.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Runs `main` on a tokio runtime with a shutdown token cancelled by SIGTERM or Ctrl-C.
fn runtime<F, Fut>(main: F) -> Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    // One thread per child: the system's parallelism is its processes (a frontend per server and
    // the kernel), and a single-threaded runtime spends nothing on work stealing and locks.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        // Installed before `main` runs: a SIGTERM right after readiness must stop us cleanly.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            signals.cancel();
        });
        main(shutdown).await
    })
}
