//! The command line: what each subcommand takes, and running it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::frontend::{self, args::ServeArgs};
use crate::supervisor::control::{Reply, Request, Row};

#[derive(Debug, Parser)]
#[command(
    name = "chat-supervisor",
    version,
    about = "One chat, many frontends, each its own process."
)]
pub struct Cli {
    /// The config file (before or after the subcommand).
    #[arg(short, long = "config", global = true, default_value = "servers.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the kernel and every server in the config, and keep them running (foreground).
    Up,
    /// Validate the config and print what `up` would run.
    Check,
    /// Show the kernel and every server (or those named): address, pid, state, uptime, users.
    ///
    /// Exits with 3 if one shown is stopped or failed (as `systemctl status` does), 4 for an
    /// unknown name.
    Status {
        names: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the config and apply the changes (as a saved edit or SIGHUP would).
    Reload,
    /// Restart servers (`all`: every server; `kernel`: the kernel), clearing a failed state.
    /// Their clients stay connected: each new process takes them over.
    Restart {
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// The kernel, then every server once it is back: how a newly installed binary takes over
        /// with nobody disconnected.
        #[arg(long)]
        all: bool,
    },
    /// Stop servers (`all`, or `kernel`) until `start`.
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Start stopped servers (`all`, or `kernel`).
    Start {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop everything and the supervisor itself.
    Down,
    /// Print the last lines of the supervisor's log, or of a child's; with -f, follow it.
    Logs {
        /// `kernel` or a server's name; none: the supervisor's own log.
        name: Option<String>,
        /// Go on printing lines as they are written (across the daily rotation and restarts)
        /// until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
        /// How many of the last lines to print.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
    },
    /// Print a shell completion script.
    ///
    /// For example: `chat-supervisor completions bash > /etc/bash_completion.d/chat-supervisor`.
    Completions { shell: clap_complete::Shell },
    /// Run the kernel: the one owner of the chat state, serving frontends on a Unix socket.
    #[command(hide = true)]
    Kernel {
        /// The Unix socket to serve on; its directory must be private to this user.
        #[arg(long)]
        socket: PathBuf,
        /// Frontends whose hellos to wait for before applying any input (after a restart).
        #[arg(long, value_delimiter = ',')]
        expect: Vec<String>,
        /// Be this host's member of the chat kept in this Redis (`[cluster] redis`).
        #[arg(long, requires_all = ["node", "instance"])]
        redis: Option<String>,
        /// This host's name in the cluster.
        #[arg(long)]
        node: Option<String>,
        /// This run of `up` (a kernel restart keeps it; another host's is another).
        #[arg(long)]
        instance: Option<String>,
    },
    /// Run one frontend: a telnet (tcp) or web (ws) server attached to the kernel.
    #[command(hide = true)]
    Serve(ServeArgs),
}

impl Cli {
    pub fn run(self) -> Result<()> {
        let config = &self.config;
        match self.command {
            Command::Up => crate::supervisor::up(config),
            Command::Check => check(config),
            Command::Status { names, json } => status(config, &names, json),
            Command::Reload => say(control(config, &Request::Reload)?),
            Command::Restart { mut names, all } => {
                if all {
                    names.extend(["kernel".to_string(), "all".to_string()]);
                }
                say(control(config, &Request::Restart { names })?)
            }
            Command::Stop { names } => say(control(config, &Request::Stop { names })?),
            Command::Start { names } => say(control(config, &Request::Start { names })?),
            Command::Down => say(control(config, &Request::Down)?),
            Command::Logs { name, follow, lines } => {
                crate::supervisor::logs::run(config, name.as_deref(), lines, follow)
            }
            Command::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "chat-supervisor", &mut std::io::stdout());
                Ok(())
            }
            Command::Kernel {
                socket,
                expect,
                redis,
                node,
                instance,
            } => {
                crate::logging::init();
                raise_fd_limit();
                let member = match (redis, node, instance) {
                    (Some(redis), Some(node), Some(instance)) => Some(crate::kernel::Membership {
                        cluster: crate::config::Cluster { redis, node },
                        instance,
                    }),
                    _ => None,
                };
                runtime(|shutdown| async move { crate::kernel::run(&socket, expect, member, shutdown).await })
            }
            Command::Serve(args) => {
                // First, while this is the only thread (it edits the environment).
                let listener = frontend::listen::listener(args.listen)?;
                let handoff = crate::handoff::socket::Channel::inherited();
                let options = args.options();
                crate::logging::init();
                raise_fd_limit();
                runtime(|shutdown| frontend::run(options, listener, handoff, shutdown))
            }
        }
    }
}

/// `check`: every problem, or the plan.
fn check(path: &Path) -> Result<()> {
    let config = crate::config::load(path)?;
    println!("{} is valid. `up` would run:", path.display());
    let hard =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(u64::MAX, |(_, hard)| hard);
    if let Some(problem) = crate::supervisor::parked::fd_shortfall(crate::supervisor::parked::fd_needed(&config), hard)
    {
        println!("  warning: {problem}");
    }
    println!("  kernel  {}", config.run_dir.join("kernel.sock").display());
    for server in &config.servers {
        let s = &server.settings;
        let limits = &s.limits;
        println!(
            "  {}  {} on {}  color={} max_line={} max_connections={} max_connections_per_ip={} \
             input_rate={} input_burst={} send_timeout={}s restart={}",
            s.name,
            s.kind,
            server.addr(),
            s.color,
            limits.max_line,
            limits.max_connections,
            limits.max_connections_per_ip,
            limits.input_rate,
            limits.input_burst,
            limits.send_timeout.as_secs(),
            server.restart,
        );
        if s.kind == crate::config::Kind::Ws {
            println!(
                "      handshake_timeout={}s allowed_hosts={:?}",
                limits.handshake_timeout.as_secs(),
                s.allowed_hosts
            );
        }
        match s.motd.as_str() {
            "" => println!("      motd: none (motd = \"\")"),
            motd => println!("      motd: {motd}"),
        }
    }
    if let Some(cluster) = &config.cluster {
        println!(
            "  cluster: one chat with every host on {}, this host as node {}",
            cluster.redis, cluster.node
        );
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

/// Ends the program with this exit code, after printing `message` unless it is empty.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitWith {
    pub code: u8,
    pub message: String,
}

/// `status`: the table (or JSON) of the rows named, exit code 3 if one is stopped or failed
/// (systemctl's and LSB's "not running"), 4 for an unknown name (theirs for "unknown").
fn status(config: &Path, names: &[String], json: bool) -> Result<()> {
    use crate::supervisor::lifecycle::State;
    let reply = control(config, &Request::Status)?;
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !reply.servers.iter().any(|r| r.name == **n))
        .collect();
    if !unknown.is_empty() {
        let unknown: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
        return Err(ExitWith {
            code: 4,
            message: format!("no server named {} (see `chat-supervisor status`)", unknown.join(", ")),
        }
        .into());
    }
    let rows: Vec<Row> = reply
        .servers
        .into_iter()
        .filter(|r| names.is_empty() || names.contains(&r.name))
        .collect();
    if json {
        let status =
            serde_json::json!({ "servers": rows, "config_error": reply.config_error, "cluster": reply.cluster });
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        use std::io::IsTerminal;
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        print!("{}", crate::supervisor::control::table(&rows, color));
        if let Some(cluster) = &reply.cluster {
            let nodes: Vec<String> = cluster
                .nodes
                .iter()
                .map(|n| {
                    let this = if n.name == cluster.node { " (this host)" } else { "" };
                    format!("{}{this} {} users", n.name, n.users)
                })
                .collect();
            let nodes = if nodes.is_empty() {
                "unknown (the kernel did not answer)".to_string()
            } else {
                nodes.join(", ")
            };
            println!("cluster on {} as node {}: {nodes}", cluster.redis, cluster.node);
        }
        if let Some(error) = &reply.config_error {
            println!("{error}");
        }
    }
    let down = |r: &Row| r.state.parse::<State>().is_ok_and(State::unavailable);
    if rows.iter().any(down) {
        return Err(ExitWith {
            code: 3,
            message: String::new(),
        }
        .into());
    }
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
