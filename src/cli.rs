//! The command line: what each subcommand takes, and running it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::frontend::{self, Kind, Limits};

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the kernel: the one owner of the chat state, serving frontends on a Unix socket.
    #[command(hide = true)]
    Kernel {
        /// The Unix socket to serve on; its directory must be private to this user.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Run one frontend: a telnet (tcp) or web (ws) server attached to the kernel.
    #[command(hide = true)]
    Serve {
        /// This server's name, as in servers.toml.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// The kernel's Unix socket.
        #[arg(long)]
        kernel: PathBuf,
        /// Address to bind when no socket is inherited (LISTEN_FDS).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// ANSI colours on telnet.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        color: bool,
        #[arg(long, default_value_t = 4096)]
        max_line: usize,
        #[arg(long, default_value_t = 10_000)]
        max_connections: usize,
    },
}

impl Cli {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Kernel { socket } => {
                runtime(|shutdown| async move { crate::kernel::run(&socket, shutdown).await })
            }
            Command::Serve {
                name,
                kind,
                kernel,
                listen,
                color,
                max_line,
                max_connections,
            } => {
                let options = frontend::Options {
                    name,
                    kind,
                    kernel,
                    listen,
                    color,
                    limits: Limits {
                        max_line: max_line.max(1),
                        max_connections,
                    },
                };
                runtime(|shutdown| frontend::run(options, shutdown))
            }
        }
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
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            signals.cancel();
        });
        main(shutdown).await
    })
}
