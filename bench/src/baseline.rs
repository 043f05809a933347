//! The in-process baseline (`chat-bench baseline`): the same telnet and web servers wired to one
//! [`Chat`] by function calls, with no kernel process and no socket between them, so that the
//! benchmark reports what the multi-process design costs as a ratio. Built only from the
//! library's public API.

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use chat_supervisor::chat::{Chat, Event, FrontendId, Output, SessionKey};
use chat_supervisor::config::Kind;
use chat_supervisor::frontend::session::{self, Sessions};
use chat_supervisor::frontend::{Limits, http, render, tcp, web, websocket};
use chat_supervisor::kernel::clock::Clock;
use chat_supervisor::wire::Upstream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::system::UNLIMITED;

/// Binds `tcp` telnet then `ws` web listeners on loopback, says `listening kind=K addr=A` for
/// each, and serves them until SIGINT.
pub async fn serve(tcp: usize, ws: usize) -> Result<()> {
    let mut listeners = Vec::new();
    for i in 0..tcp + ws {
        let kind = if i < tcp { Kind::Tcp } else { Kind::Ws };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        println!("listening kind={kind} addr={}", listener.local_addr()?);
        listeners.push((kind, listener));
    }
    let limits = Limits {
        max_connections: UNLIMITED,
        max_connections_per_ip: UNLIMITED,
        input_rate: 0,
        ..Limits::default()
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    run(listeners, false, limits, shutdown).await
}

/// One served listener's sessions and how it renders events.
struct Target {
    sessions: Arc<Sessions>,
    render: Box<dyn Fn(&Event) -> Bytes + Send + Sync>,
}

/// Serves every listener from this process until `shutdown`.
async fn run(
    listeners: Vec<(Kind, std::net::TcpListener)>,
    color: bool,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<()> {
    let (tagged, mut inputs) = mpsc::channel::<(FrontendId, Upstream)>(session::UPSTREAM);
    let mut targets = Vec::new();
    for (i, (kind, listener)) in listeners.into_iter().enumerate() {
        let frontend = i as FrontendId;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?.ip();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (upstream, mut upstream_rx) = mpsc::channel(session::UPSTREAM);
        let tagged = tagged.clone();
        tokio::spawn(async move {
            while let Some(message) = upstream_rx.recv().await {
                if tagged.send((frontend, message)).await.is_err() {
                    return;
                }
            }
        });
        match kind {
            Kind::Tcp => {
                let sessions = Arc::new(Sessions::new(upstream, None));
                sessions.set_kernel(true);
                targets.push(Target {
                    sessions: sessions.clone(),
                    render: Box::new(move |event: &Event| render::telnet(event, color)),
                });
                let telnet = tcp::Telnet {
                    sessions,
                    color,
                    limits,
                };
                tokio::spawn(tcp::serve(listener, Arc::new(telnet), Vec::new(), shutdown.clone()));
            }
            Kind::Ws => {
                let sessions = Arc::new(Sessions::new(upstream, Some(web::goodbye())));
                sessions.set_kernel(true);
                let sweeping = sessions.clone();
                let ping = websocket::ping(b"");
                tokio::spawn(async move { sweeping.sweep(ping, limits.ping_interval).await });
                targets.push(Target {
                    sessions: sessions.clone(),
                    render: Box::new(web::render),
                });
                let hosts = http::Hosts {
                    bound,
                    allowed: Vec::new(),
                };
                let web = web::Web {
                    sessions,
                    limits,
                    hosts,
                };
                tokio::spawn(web::serve(listener, Arc::new(web), Vec::new(), shutdown.clone()));
            }
        }
    }
    drop(tagged);

    let mut chat = Chat::new();
    let mut clock = Clock::default();
    let mut out = Vec::new();
    loop {
        let (frontend, message) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            input = inputs.recv() => match input {
                Some(input) => input,
                None => return Ok(()),
            },
        };
        let key = |session| SessionKey { frontend, session };
        match message {
            Upstream::Open { session } => {
                chat.open(key(session));
            }
            Upstream::Line { session, line } => {
                chat.input(key(session), &line, clock.now(), &mut out);
                // Applied: as the kernel's acknowledgement would, this makes room for more.
                let target = &targets[frontend as usize];
                target.sessions.acked(session);
                target.sessions.acks_done();
            }
            Upstream::Closed { session } => chat.close(key(session), &mut out),
            Upstream::Hello { .. } | Upstream::Census | Upstream::Heartbeat | Upstream::Bye => {}
        }
        for output in out.drain(..) {
            match output {
                Output::Deliver { event, to } | Output::Broadcast { event, to } => {
                    for (frontend, sessions) in to {
                        let target = &targets[frontend as usize];
                        target.sessions.deliver(&sessions, &(target.render)(&event), 0);
                    }
                }
                Output::Named { key, login } => targets[key.frontend as usize].sessions.set_login(key.session, login),
                Output::Close(key) => targets[key.frontend as usize].sessions.close(key.session),
            }
        }
        for target in &targets {
            target.sessions.hold_back().await;
        }
    }
}
