//! The chat in one process: the same telnet and web servers wired to one [`Chat`] by function
//! calls, with no kernel process and no socket between them. It is the benchmark's baseline, so
//! that `chat-bench` reports what the multi-process design costs as a ratio.

use std::sync::Arc;

use anyhow::Result;
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{self, Sessions};
use super::{Kind, Limits, render, tcp, web};
use crate::chat::{Chat, Event, FrontendId, Output, SessionId, SessionKey};
use crate::kernel::clock::Clock;
use crate::wire::Upstream;

/// One served listener's sessions, by kind.
enum Target {
    Telnet(Arc<Sessions<Bytes>>, bool),
    Web(Arc<Sessions<Utf8Bytes>>),
}

impl Target {
    fn deliver(&self, to: &[SessionId], event: &Event) {
        match self {
            Target::Telnet(sessions, color) => sessions.deliver(to, &render::telnet(event, *color)),
            Target::Web(sessions) => sessions.deliver(to, &web::render(event)),
        }
    }

    fn set_login(&self, session: SessionId, login: Option<crate::chat::Login>) {
        match self {
            Target::Telnet(sessions, _) => sessions.set_login(session, login),
            Target::Web(sessions) => sessions.set_login(session, login),
        }
    }

    fn close(&self, session: SessionId) {
        match self {
            Target::Telnet(sessions, _) => sessions.close(session),
            Target::Web(sessions) => sessions.close(session),
        }
    }
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
                let sessions = Arc::new(Sessions::new(upstream));
                targets.push(Target::Telnet(sessions.clone(), color));
                let telnet = tcp::Telnet {
                    sessions,
                    color,
                    limits,
                };
                tokio::spawn(tcp::serve(listener, Arc::new(telnet), shutdown.clone()));
            }
            Kind::Ws => {
                let sessions = Arc::new(Sessions::new(upstream));
                targets.push(Target::Web(sessions.clone()));
                let router = web::router(Arc::new(web::Web::new(sessions, limits)));
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown.cancelled_owned())
                        .await
                });
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
            }
            Upstream::Closed { session } => chat.close(key(session), &mut out),
            Upstream::Hello { .. } | Upstream::Census => {}
        }
        for output in out.drain(..) {
            match output {
                Output::Deliver { event, to } | Output::Broadcast { event, to } => {
                    for (frontend, sessions) in to {
                        targets[frontend as usize].deliver(&sessions, &event);
                    }
                }
                Output::Named { key, login } => targets[key.frontend as usize].set_login(key.session, login),
                Output::Close(key) => targets[key.frontend as usize].close(key.session),
            }
        }
    }
}
