//! The frontend process (`chat-supervisor serve`): owns client connections and talks to the
//! kernel for everything else.
//!
//! - [`args`]: the `serve` command line, built by the supervisor and parsed here.
//! - [`listen`]: the listening socket, inherited (fd 3) or bound by hand.
//! - [`accept`] and [`admission`]: the accept loop, connection limits (pure counting), refusals.
//! - [`client`]: one client connection: throttled reading, the writer, timeouts.
//! - [`carry`]: what each client's reader leaves to the next process on a planned hand-over
//!   (pure).
//! - [`session`]: this frontend's sessions and the flow of lines to the kernel.
//! - [`outbox`]: each client's bounded outgoing queue.
//! - [`handoff`]: clients parked with the supervisor, adopted from a previous process, and the
//!   hand-over.
//! - [`link`]: the kernel connection: hello, heartbeats, reconnects, frames both ways.
//! - [`telnet`] and [`tcp`]: telnet framing (pure) and the telnet server.
//! - [`http`], [`websocket`] and [`web`]: HTTP requests and WebSocket framing (pure), and the web
//!   server.
//! - [`render`]: events into telnet lines or WebSocket JSON (pure).

pub mod accept;
pub mod admission;
pub mod args;
pub mod carry;
pub mod client;
pub mod handoff;
pub mod http;
pub mod link;
pub mod listen;
pub mod outbox;
pub mod render;
pub mod session;
pub mod tcp;
pub mod telnet;
pub mod web;
pub mod websocket;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Kind;
use link::Link;
use session::{Adopted, Sessions};

/// Per-server limits, owned by the config (see [`crate::config::Settings`]).
pub use crate::config::Limits;

/// Everything [`run`] needs: the server's [`Settings`](crate::config::Settings), field by field
/// (see [`args::ServeArgs::options`]), and the kernel's socket.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub kind: Kind,
    pub kernel: PathBuf,
    pub color: bool,
    pub limits: Limits,
    /// Host names served besides the bound address (web only).
    pub allowed_hosts: Vec<String>,
    /// Greets each client as it connects (`[INFO] - MOTD`); empty: no greeting.
    pub motd: String,
}

/// How long a new process waits for the supervisor to hand it the clients it parked.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a hand-over waits for lines to be acknowledged and outboxes to be written.
const HAND_OVER_FLUSH: Duration = Duration::from_secs(2);
/// How long a stopping frontend waits for its goodbye to reach the kernel.
const BYE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long adopted clients wait for the kernel link before they are served anyway.
const LINK_FIRST: Duration = Duration::from_millis(500);

/// Serves clients on `listener` (see [`listen::listener`]) until `shutdown`. With a `handoff`
/// socket (see [`crate::handoff`]) it first adopts the clients a previous process left, parks a
/// copy of each new one, and hands them all over when the supervisor asks.
pub async fn run(
    options: Options,
    listener: std::net::TcpListener,
    handoff: Option<std::os::fd::OwnedFd>,
    shutdown: CancellationToken,
) -> Result<()> {
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(name = %options.name, kind = %options.kind, %addr, "listening");
    let limits = Limits {
        max_connections: accept::connection_budget(options.limits.max_connections),
        ..options.limits
    };

    tokio::spawn(crate::memory::trim_when_idle());
    tokio::spawn(crate::notify::watchdog());
    let hand_over = CancellationToken::new();
    let (store, adoption) = match handoff {
        Some(fd) => {
            let channel = crate::handoff::socket::Channel::new(fd)?;
            let adoption = match tokio::time::timeout(ADOPT_TIMEOUT, handoff::adopt(&channel)).await {
                Ok(Ok(adoption)) => adoption,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not adopt the clients of the previous process");
                    handoff::Adoption::default()
                }
                Err(_) => {
                    tracing::warn!("no adoption from the supervisor within {ADOPT_TIMEOUT:?}");
                    handoff::Adoption::default()
                }
            };
            (Some(handoff::start(channel, hand_over.clone())), adoption)
        }
        None => (None, handoff::Adoption::default()),
    };
    let taken: Vec<u32> = adoption.clients.iter().map(|(_, slot, _)| *slot).collect();
    let (linked, link_ready) = tokio::sync::oneshot::channel();
    let ready = move || {
        crate::notify::ready();
        let _ = linked.send(());
    };
    // The link task owns the receiver and lives as long as the process.
    let (upstream, upstream_rx) = mpsc::channel(session::UPSTREAM);
    let greeting = (!options.motd.is_empty()).then_some(crate::chat::Event::Greeting { motd: options.motd });
    let (sessions, link, serving): (Arc<Sessions>, _, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) =
        match options.kind {
            Kind::Tcp => {
                let color = options.color;
                let greeting = greeting.map(|event| render::telnet(&event, color));
                let sessions = Arc::new(
                    Sessions::new(upstream, None)
                        .greeting(greeting)
                        .store(store)
                        .positions(adoption.state.clone(), &taken),
                );
                let (adopted, resume) = register(&sessions, adoption);
                let link = Link {
                    name: options.name,
                    socket: options.kernel,
                    resume,
                    sessions: sessions.clone(),
                    render: move |event: &crate::chat::Event| render::telnet(event, color),
                };
                let link = tokio::spawn(link.run(upstream_rx, shutdown.clone(), ready));
                let telnet = tcp::Telnet {
                    sessions: sessions.clone(),
                    color,
                    limits,
                };
                let serving = Box::pin(tcp::serve(listener, Arc::new(telnet), adopted, shutdown.clone()));
                (sessions, link, serving)
            }
            Kind::Ws => {
                let greeting = greeting.map(|event| web::render(&event));
                let sessions = Arc::new(
                    Sessions::new(upstream, Some(web::goodbye()))
                        .greeting(greeting)
                        .store(store)
                        .positions(adoption.state.clone(), &taken),
                );
                let (adopted, resume) = register(&sessions, adoption);
                let sweeping = sessions.clone();
                tokio::spawn(async move { sweeping.sweep(websocket::ping(b""), limits.ping_interval).await });
                let link = Link {
                    name: options.name,
                    socket: options.kernel,
                    resume,
                    sessions: sessions.clone(),
                    render: web::render,
                };
                let link = tokio::spawn(link.run(upstream_rx, shutdown.clone(), ready));
                let hosts = http::Hosts {
                    bound: addr.ip(),
                    allowed: options.allowed_hosts,
                };
                let web = web::Web {
                    sessions: sessions.clone(),
                    limits,
                    hosts,
                };
                let serving = Box::pin(web::serve(listener, Arc::new(web), adopted, shutdown.clone()));
                (sessions, link, serving)
            }
        };
    if !taken.is_empty() {
        // The kernel link first: it resumes the adopted clients' output, and starting thousands
        // of their tasks at once held its hello up (by 7-8 ms at 5,000 clients).
        let _ = tokio::time::timeout(LINK_FIRST, link_ready).await;
    }
    tokio::select! {
        () = serving => {
            // Stopping for good: the link says goodbye, so the kernel logs our users out now.
            let _ = tokio::time::timeout(BYE_TIMEOUT, link).await;
        }
        () = hand_over.cancelled() => hand_over_and_exit(&sessions).await,
    }
    Ok(())
}

/// Registers the adopted clients as sessions (before the link's first hello names them), and
/// makes each descriptor a socket of this runtime again. Returns them with where the kernel is to
/// resume: the last frame that reached every one of them (see [`crate::handoff::state`]).
#[allow(clippy::type_complexity)]
fn register(
    sessions: &Sessions,
    adoption: handoff::Adoption,
) -> (Vec<(Adopted, tokio::net::TcpStream)>, Option<(u64, u64)>) {
    let position = adoption.state.as_ref().and_then(|s| s.position());
    let count = adoption.clients.len();
    let mut resume = position;
    if let Some((epoch, _)) = position {
        sessions.floors_of(epoch);
    }
    let carried = adoption.carried;
    let registered: Vec<_> = handoff::sockets(adoption.clients)
        .into_iter()
        .filter_map(|socket| match socket.stream {
            Ok(stream) => {
                let seq = position.map(|(_, seq)| seq);
                let left = carried.get(&socket.id).map(Vec::as_slice);
                let (adopted, reached) = sessions.adopt(socket.id, socket.slot, socket.peer, seq, socket.counts, left);
                if let (Some((epoch, at)), Some(reached)) = (resume, reached) {
                    resume = Some((epoch, at.min(reached)));
                }
                Some((adopted, stream))
            }
            Err(e) => {
                tracing::warn!(session = socket.id, error = %e, "could not adopt a client");
                if let Some(store) = sessions.parking() {
                    store.release(socket.id);
                }
                None
            }
        })
        .collect();
    if count > 0 {
        tracing::info!(
            clients = registered.len(),
            taken_over = carried.len(),
            ?resume,
            "adopted the clients of the previous process"
        );
    }
    (registered, resume)
}

/// The supervisor asked for a hand-over (`restart NAME`): read no client any more (what they send
/// waits in their sockets), wait until the kernel has every line read so far and every client has
/// its output, hand the supervisor what each reader left (half a line, lines waiting for their
/// turn: see [`carry`]), and exit without a goodbye. The kernel keeps our sessions for the next
/// process, which adopts the connections the supervisor holds and goes on where we stopped.
async fn hand_over_and_exit(sessions: &Sessions) -> ! {
    sessions.stop_reading();
    let started = tokio::time::Instant::now();
    let deadline = started + HAND_OVER_FLUSH;
    let idle = |sessions: &Sessions| sessions.parking().is_none_or(|s| s.is_idle());
    while !(sessions.settled() && idle(sessions)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let flushed = sessions.settled();
    let carried = sessions.carried();
    if let Some(store) = sessions.parking() {
        store.carry(&carried);
        while !idle(sessions) && tokio::time::Instant::now() < deadline + BYE_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tracing::info!(
        clients = sessions.len(),
        flushed,
        taken_over = carried.len(),
        took = ?started.elapsed(),
        "handing the clients over to the next process"
    );
    // No destructor runs: the connections stay open (the supervisor holds them) and the kernel
    // hears no goodbye.
    std::process::exit(0)
}
