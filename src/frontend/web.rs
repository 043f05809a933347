//! The web server: `GET /` and its two files serve the chat page (embedded in the binary), `GET
//! /ws` upgrades to the WebSocket chat, whose frames drive the shared client loop
//! ([`client`](super::client)) as telnet lines do.
//!
//! Every connection counts against the server's limits from accept to close; a request head must
//! arrive within `handshake_timeout` (so must each next one on a kept-alive connection); a `Host`
//! that is not ours gets 421 and a cross-origin upgrade 403 (see [`http`](super::http)).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::accept::{self, Refusals};
use super::admission::{Admission, Ticket};
use super::client::{self, Decode, Input, Opening};
use super::http::{self, Hosts, Route};
use super::session::{Adopted, Sessions};
use super::websocket::{self, Item};
use super::{Limits, render};
use crate::chat::{ChatError, Event, SyntaxError};
use crate::journal::Start;

pub struct Web {
    pub sessions: Arc<Sessions>,
    pub limits: Limits,
    pub hosts: Hosts,
}

impl Web {
    /// Largest WebSocket message accepted; a larger one ends the connection. Lines between
    /// `max_line` and this get `line too long` and the connection stays.
    fn message_cap(&self) -> usize {
        self.limits.max_line + (16 << 10)
    }
}

/// An event as the text frame every web client of this frontend is sent.
pub fn render(event: &Event) -> Bytes {
    websocket::text(&render::web(event))
}

/// What a logged-out client is sent before its connection closes.
pub fn goodbye() -> Bytes {
    websocket::close(websocket::NORMAL, "logged out")
}

/// WebSocket framing as the client loop sees it.
struct Rfc6455 {
    decoder: websocket::Decoder,
    max_line: usize,
}

impl Decode for Rfc6455 {
    fn partial(&self) -> bool {
        self.decoder.partial()
    }

    fn save(&self) -> Vec<u8> {
        self.decoder.save()
    }

    fn restore(&mut self, saved: &[u8]) -> bool {
        let (max_line, max_message) = self.decoder.limits();
        match websocket::Decoder::restore(max_line, max_message, saved) {
            Some(decoder) => {
                self.decoder = decoder;
                true
            }
            None => false,
        }
    }

    fn next(&mut self, input: &mut &[u8]) -> Option<Input> {
        Some(match self.decoder.next(input)? {
            Item::Text(text) => {
                let line = text.strip_suffix('\n').unwrap_or(&text);
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.len() > self.max_line {
                    Input::TooLong
                } else {
                    Input::Line(line.to_string())
                }
            }
            Item::TooLong => Input::TooLong,
            Item::Binary => Input::Refuse(ChatError::Syntax(SyntaxError::UnknownCommand)),
            Item::Ping(payload) => Input::Pong(websocket::pong(&payload)),
            Item::Pong => Input::Nothing,
            Item::Close => Input::Close(Some(websocket::close(websocket::NORMAL, ""))),
            Item::Fail(code, reason) => Input::Close(Some(websocket::close(code, reason))),
        })
    }
}

/// Serves the WebSockets a previous process left (`adopted`), and new clients until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    web: Arc<Web>,
    adopted: Vec<(Adopted, TcpStream)>,
    shutdown: CancellationToken,
) {
    let limits = web.limits;
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    for (adopted, stream) in adopted {
        let ticket = admission.admit_adopted(adopted.peer.ip());
        tokio::spawn(adopted_task(stream, Box::new(adopted), web.clone(), ticket));
    }
    let refusals = Refusals {
        full: http::refusal(503, &Event::Error(ChatError::ServerFull).plain()),
        per_ip: http::refusal(429, &Event::Error(ChatError::TooManyConnections).plain()),
    };
    accept::serve(listener, admission, refusals, shutdown, move |stream, peer, ticket| {
        task(stream, peer, web.clone(), ticket)
    })
    .await;
}

/// A new client's task, from accept to close: the memory every connection costs, mostly.
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
fn task(stream: TcpStream, peer: SocketAddr, web: Arc<Web>, ticket: Ticket) -> impl Future<Output = ()> {
    async move {
        // The HTTP phase's future is boxed (it lasts until the upgrade, or serves a page), so
        // that a WebSocket's task is its own phase's size alone.
        let Some((stream, first)) = Box::pin(connection(stream, peer, &web)).await else {
            drop(ticket);
            return;
        };
        let end = websocket(stream, Opening::New(peer), &web, client::First::new(first)).await;
        tracing::debug!(?end, "web client gone");
        drop(ticket);
    }
}

/// An adopted WebSocket's task (see [`task`]), its `Adopted` boxed before it is spawned.
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
fn adopted_task(stream: TcpStream, adopted: Box<Adopted>, web: Arc<Web>, ticket: Ticket) -> impl Future<Output = ()> {
    async move {
        let end = websocket(stream, Opening::Adopted(adopted), &web, client::First::default()).await;
        tracing::debug!(?end, "web client gone");
        drop(ticket);
    }
}

/// Serves HTTP requests until the connection closes, or becomes a WebSocket: then returns its
/// socket and the first bytes it sent as one.
async fn connection(mut stream: TcpStream, peer: SocketAddr, web: &Web) -> Option<(TcpStream, Bytes)> {
    let mut buf = BytesMut::new();
    loop {
        let deadline = Instant::now() + web.limits.handshake_timeout;
        let (request, len) = match tokio::time::timeout_at(deadline, read_head(&stream, &mut buf)).await {
            Ok(Ok(Some(head))) => head,
            Ok(Ok(None)) => return None, // closed between requests
            Ok(Err(status)) => return Box::pin(refuse(stream, status, "malformed request")).await,
            Err(_) => return Box::pin(refuse(stream, 408, "request not complete in time")).await,
        };
        buf.advance(len);
        let close = request.close;
        let response = match http::route(&request, &web.hosts) {
            Route::Asset { asset, head } => http::asset(&asset, head, close),
            Route::Refuse(status, text) => {
                tracing::debug!(%peer, status, host = ?request.host, path = %request.path, "refused a request: {text}");
                return Box::pin(refuse(stream, status, text)).await;
            }
            Route::Upgrade { accept } => {
                if !send(&mut stream, &http::upgrade(&accept), web).await {
                    return None;
                }
                // What the client sent after its request is the WebSocket's first bytes; copied,
                // so that the request's read buffer is not kept for the connection's lifetime.
                return Some((stream, Bytes::copy_from_slice(&buf)));
            }
        };
        if !send(&mut stream, &response, web).await || close {
            return None;
        }
        if buf.is_empty() {
            buf = BytesMut::new();
        }
    }
}

/// Serves a WebSocket (its handshake done) until it ends; `first`: its bytes already read. Its
/// decoder is set up here, then the client loop's future is the task's (see `connection` in
/// [`tcp`](super::tcp)).
fn websocket(
    stream: TcpStream,
    mut opening: Opening,
    web: &Web,
    first: client::First,
) -> impl Future<Output = client::End> + '_ {
    let mut decoder = Rfc6455 {
        decoder: websocket::Decoder::new(web.limits.max_line + 2, web.message_cap()),
        max_line: web.limits.max_line,
    };
    if let Opening::Adopted(adopted) = &mut opening {
        let taken_over = adopted.carried.as_ref().is_some_and(|c| decoder.restore(&c.decoder));
        match crate::journal::recover::start(adopted.input, taken_over) {
            Start::GoOn => {}
            // Whole messages it had sent died with the previous process.
            Start::TellLost => adopted.tell(render(&Event::LineLost)),
            // It died mid-frame: where the next frame starts is unknown. The page reconnects.
            Start::MidLine => adopted.close_with(websocket::close(websocket::SERVICE_RESTART, "server restarted")),
        }
    }
    client::serve(stream, opening, &web.sessions, decoder, &web.limits, render, first)
}

/// Reads until a whole request head is in `buf`; `None` if the client closed first.
async fn read_head(stream: &TcpStream, buf: &mut BytesMut) -> Result<Option<(http::Request, usize)>, u16> {
    loop {
        if let Some(head) = http::parse(buf)? {
            return Ok(Some(head));
        }
        if stream.readable().await.is_err() {
            return Ok(None);
        }
        buf.reserve(client::READ_CHUNK);
        match stream.try_read_buf(buf) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Ok(None),
        }
    }
}

/// Writes a response within `send_timeout`.
async fn send(stream: &mut TcpStream, bytes: &[u8], web: &Web) -> bool {
    matches!(
        tokio::time::timeout(web.limits.send_timeout, stream.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

async fn refuse<T>(stream: TcpStream, status: u16, text: &str) -> Option<T> {
    client::refuse(stream, http::refusal(status, text)).await;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task is this future: its size is memory per WebSocket.
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let web = Arc::new(Web {
            sessions: Arc::new(Sessions::new(tx, None)),
            limits: Limits::default(),
            hosts: Hosts {
                bound: "127.0.0.1".parse().unwrap(),
                allowed: Vec::new(),
            },
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let peer = stream.local_addr().unwrap();
        let ticket = Admission::new(1, 1).admit(peer.ip()).ok().unwrap();
        let task = task(stream, peer, web, ticket);
        let size = std::mem::size_of_val(&task);
        eprintln!("a web connection's task: {size} bytes");
        // tokio adds 104 bytes and rounds the task up to 128: at most 920 keeps it in 1,024.
        assert!(size <= 920, "a web connection's task grew to {size} bytes");
    }
}
