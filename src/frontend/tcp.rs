//! The telnet server: the accept loop with its limits, and per client the telnet decoder driving
//! the shared client loop ([`client`](super::client)).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::accept::{self, Refusals};
use super::admission::Admission;
use super::client::{self, Decode, Input};
use super::session::Sessions;
use super::telnet::{Decoder, Item};
use super::{Limits, render};
use crate::chat::{ChatError, Event};

pub struct Telnet {
    pub sessions: Arc<Sessions>,
    pub color: bool,
    pub limits: Limits,
}

impl Telnet {
    pub fn render(&self, event: &Event) -> Bytes {
        render::telnet(event, self.color)
    }
}

/// Telnet framing as the client loop sees it.
struct Telnet854(Decoder);

impl Decode for Telnet854 {
    fn next(&mut self, input: &mut &[u8]) -> Option<Input> {
        Some(match self.0.next(input)? {
            Item::Line(line) => Input::Line(line),
            Item::TooLong => Input::TooLong,
            Item::Answer(bytes) => Input::Reply(Bytes::copy_from_slice(&bytes)),
        })
    }
}

pub async fn serve(listener: TcpListener, telnet: Arc<Telnet>, shutdown: CancellationToken) {
    let limits = telnet.limits;
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    let refusals = Refusals {
        full: telnet.render(&Event::Error(ChatError::ServerFull)),
        per_ip: telnet.render(&Event::Error(ChatError::TooManyConnections)),
    };
    accept::serve(listener, admission, refusals, shutdown, move |stream, peer, ticket| {
        let telnet = telnet.clone();
        async move {
            connection(stream, peer, &telnet).await;
            drop(ticket);
        }
    })
    .await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, telnet: &Telnet) {
    let decoder = Telnet854(Decoder::new(telnet.limits.max_line));
    let render = |event: &Event| telnet.render(event);
    let end = client::serve(
        stream,
        peer,
        &telnet.sessions,
        decoder,
        &telnet.limits,
        &render,
        Bytes::new(),
    )
    .await;
    tracing::debug!(%peer, ?end, "telnet client gone");
}
