//! The chat in one process: the same telnet and web servers wired to one [`Chat`] by function
//! calls, with no kernel process and no socket between them. It is the benchmark's baseline, so
//! that `chat-bench` reports what the multi-process design costs as a ratio.

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{self, Sessions};
use super::{Kind, Limits, http, render, tcp, web};
use crate::chat::{Chat, Event, FrontendId, Output, SessionKey};
use crate::kernel::clock::Clock;
use crate::wire::Upstream;

/// One served listener's sessions and how it renders events.
struct Target {
    sessions: Arc<Sessions>,
    render: Box<dyn Fn(&Event) -> Bytes + Send + Sync>,
}

/// Serves every listener from this process until `shutdown`.
pub async fn run(
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
                tokio::spawn(tcp::serve(listener, Arc::new(telnet), shutdown.clone()));
            }
            Kind::Ws => {
                let sessions = Arc::new(Sessions::new(upstream, Some(web::goodbye())));
                sessions.set_kernel(true);
                let sweeping = sessions.clone();
                let ping = super::websocket::ping(b"");
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
                tokio::spawn(web::serve(listener, Arc::new(web), shutdown.clone()));
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
            Upstream::Hello { .. } | Upstream::Census | Upstream::Heartbeat => {}
        }
        for output in out.drain(..) {
            match output {
                Output::Deliver { event, to } | Output::Broadcast { event, to } => {
                    for (frontend, sessions) in to {
                        let target = &targets[frontend as usize];
                        target.sessions.deliver(&sessions, &(target.render)(&event));
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
