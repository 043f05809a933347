//! A frontend process from start to end: take over what the previous process of this server left
//! (its clients, through the supervisor, and the journal), connect to the kernel, serve, and end
//! by a goodbye to the kernel or by a hand-over to the next process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::handoff::{self, Adoption, Store};
use super::link::Link;
use super::session::{self, Adopted, Sessions};
use super::{Limits, Options, accept, hand_over, http, render, tcp, web, websocket};
use crate::chat::Event;
use crate::config::{Kind, Settings};
use crate::journal::Journal;

/// How long a new process waits for the supervisor to hand it the clients it parked.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping frontend waits for its goodbye to reach the kernel.
const BYE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long adopted clients wait for the kernel link before they are served anyway.
const LINK_FIRST: Duration = Duration::from_millis(500);

/// Serves clients on `listener` (see [`listen::listener`](super::listen::listener)) until
/// `shutdown`. With a `handoff` socket (see [`crate::handoff`]) it first adopts the clients a
/// previous process left, parks a copy of each new one, and hands them all over when the
/// supervisor asks.
pub async fn run(
    options: Options,
    listener: std::net::TcpListener,
    handoff: Option<std::os::fd::OwnedFd>,
    shutdown: CancellationToken,
) -> Result<()> {
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let settings = &options.settings;
    tracing::info!(name = %settings.name, kind = %settings.kind, %addr, "listening");
    let limits = Limits {
        max_connections: accept::connection_budget(settings.limits.max_connections),
        ..settings.limits
    };
    tokio::spawn(crate::memory::trim_when_idle());
    tokio::spawn(crate::notify::watchdog());
    let hand_over = CancellationToken::new();
    let (store, adoption) = take_over(handoff, &hand_over).await?;
    let taken: Vec<u32> = adoption.clients.iter().map(|(_, slot, _)| *slot).collect();
    let journal = Journal::new(adoption.file.clone(), &taken);
    let (upstream, upstream_rx) = mpsc::channel(session::UPSTREAM);
    let render = Render::of(settings);
    let greeting = (!settings.motd.is_empty()).then(|| {
        render.render(&Event::Greeting {
            motd: settings.motd.clone(),
        })
    });
    let goodbye = (settings.kind == Kind::Ws).then(web::goodbye);
    let sessions = Arc::new(
        Sessions::new(upstream, goodbye)
            .greeting(greeting)
            .store(store)
            .journal(journal),
    );
    let (adopted, resume) = register(&sessions, adoption);
    let (linked, link_ready) = tokio::sync::oneshot::channel();
    let ready = move || {
        crate::notify::ready();
        let _ = linked.send(());
    };
    let link = Link {
        name: settings.name.clone(),
        socket: options.kernel.clone(),
        resume,
        sessions: sessions.clone(),
        render: move |event: &Event| render.render(event),
    };
    let link = tokio::spawn(link.run(upstream_rx, shutdown.clone(), ready));
    if !adopted.is_empty() {
        // The kernel link first: it resumes the adopted clients' output, and starting thousands
        // of their tasks at once held its hello up (by 7-8 ms at 5,000 clients).
        let _ = tokio::time::timeout(LINK_FIRST, link_ready).await;
    }
    let serving = clients(
        settings,
        sessions.clone(),
        limits,
        (listener, addr.ip()),
        adopted,
        shutdown.clone(),
    );
    tokio::select! {
        () = serving => {
            // Stopping for good: the link says goodbye, so the kernel logs our users out now.
            let _ = tokio::time::timeout(BYE_TIMEOUT, link).await;
        }
        () = hand_over.cancelled() => hand_over::exit(&sessions).await,
    }
    Ok(())
}

/// Serves the clients: the adopted ones, then new ones from `listener` (bound to `bound`) until
/// `shutdown`.
fn clients(
    settings: &Settings,
    sessions: Arc<Sessions>,
    limits: Limits,
    (listener, bound): (tokio::net::TcpListener, std::net::IpAddr),
    adopted: Vec<(Adopted, tokio::net::TcpStream)>,
    shutdown: CancellationToken,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    match settings.kind {
        Kind::Tcp => {
            let telnet = tcp::Telnet {
                sessions,
                color: settings.color,
                limits,
            };
            Box::pin(tcp::serve(listener, Arc::new(telnet), adopted, shutdown))
        }
        Kind::Ws => {
            let sweeping = sessions.clone();
            tokio::spawn(async move { sweeping.sweep(websocket::ping(b""), limits.ping_interval).await });
            let hosts = http::Hosts {
                bound,
                allowed: settings.allowed_hosts.clone(),
            };
            let web = web::Web {
                sessions,
                limits,
                hosts,
            };
            Box::pin(web::serve(listener, Arc::new(web), adopted, shutdown))
        }
    }
}

/// How this frontend renders events for its clients.
#[derive(Clone, Copy)]
enum Render {
    Telnet { color: bool },
    Web,
}

impl Render {
    fn of(settings: &Settings) -> Self {
        match settings.kind {
            Kind::Tcp => Render::Telnet { color: settings.color },
            Kind::Ws => Render::Web,
        }
    }

    fn render(self, event: &Event) -> Bytes {
        match self {
            Render::Telnet { color } => render::telnet(event, color),
            Render::Web => web::render(event),
        }
    }
}

/// Serves the `handoff` socket, if the supervisor gave one: first receives what the previous
/// process left (see [`handoff::receive`]), then starts the task that parks each new client;
/// `hand_over` is cancelled when the supervisor asks this process to hand over.
async fn take_over(
    handoff: Option<std::os::fd::OwnedFd>,
    hand_over: &CancellationToken,
) -> Result<(Option<Store>, Adoption)> {
    let Some(fd) = handoff else {
        return Ok((None, Adoption::default()));
    };
    let channel = crate::handoff::socket::Channel::new(fd)?;
    let adoption = match tokio::time::timeout(ADOPT_TIMEOUT, handoff::receive(&channel)).await {
        Ok(Ok(adoption)) => adoption,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not adopt the clients of the previous process");
            Adoption::default()
        }
        Err(_) => {
            tracing::warn!("no adoption from the supervisor within {ADOPT_TIMEOUT:?}");
            Adoption::default()
        }
    };
    Ok((Some(handoff::start(channel, hand_over.clone())), adoption))
}

/// Registers the adopted clients as sessions (before the link's first hello names them), and
/// makes each descriptor a socket of this runtime again. Returns them with where the kernel is to
/// resume (see [`crate::journal::recover::resume_from`]).
#[allow(clippy::type_complexity)]
fn register(sessions: &Sessions, adoption: Adoption) -> (Vec<(Adopted, tokio::net::TcpStream)>, Option<(u64, u64)>) {
    let count = adoption.clients.len();
    let mut carried = adoption.carried;
    let taken_over = carried.len();
    let mut reached = Vec::with_capacity(count);
    let registered: Vec<_> = handoff::sockets(adoption.clients)
        .into_iter()
        .filter_map(|socket| match socket.stream {
            Ok(stream) => {
                let part = carried.remove(&socket.id);
                let (adopted, floor) = sessions.adopt(socket.id, socket.slot, socket.peer, socket.counts, part);
                reached.push(floor);
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
    let resume = crate::journal::recover::resume_from(sessions.left_off(), reached);
    if count > 0 {
        tracing::info!(
            clients = registered.len(),
            taken_over,
            ?resume,
            "adopted the clients of the previous process"
        );
    }
    (registered, resume)
}
