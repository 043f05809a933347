//! The web server: `GET /` serves the chat page (embedded in the binary), `GET /ws` upgrades to
//! the WebSocket chat. Cross-origin upgrades are refused; frame and message sizes are capped; per
//! client one reader and one writer, as on telnet.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use super::outbox::{Next, OutboxRx};
use super::session::{Session, Sessions};
use super::{Limits, render};
use crate::chat::{ChatError, Event};

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");
/// Scripts and styles only from this server; no frames, no plugins, no other host.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Per-connection WebSocket buffers: what one read takes in, what is gathered before a write.
const READ_BUFFER: usize = 4 << 10;
const WRITE_BUFFER: usize = 4 << 10;

pub struct Web {
    pub sessions: Arc<Sessions<Utf8Bytes>>,
    pub limits: Limits,
    clients: AtomicUsize,
}

impl Web {
    pub fn new(sessions: Arc<Sessions<Utf8Bytes>>, limits: Limits) -> Self {
        Self {
            sessions,
            limits,
            clients: AtomicUsize::new(0),
        }
    }

    /// Largest WebSocket message or frame accepted; larger ones end the connection. Lines between
    /// `max_line` and this get `line too long` and the connection stays.
    fn message_cap(&self) -> usize {
        self.limits.max_line + (16 << 10)
    }
}

pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", PAGE)))
        .route("/app.js", get(|| asset("text/javascript; charset=utf-8", SCRIPT)))
        .route("/app.css", get(|| asset("text/css; charset=utf-8", STYLE)))
        .route("/ws", get(upgrade))
        .with_state(web)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn upgrade(State(web): State<Arc<Web>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !same_origin(&headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), host = ?headers.get(header::HOST), "refused a cross-origin WebSocket");
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    let cap = web.message_cap();
    // tungstenite's buffers default to 128 KiB each, per connection: sized for chat lines instead.
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| client(socket, web))
}

/// A browser always sends `Origin`; it must name the host the page came from (the `Host` header).
/// Clients that are not browsers send none and cannot be tricked into riding a user's session.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(header::HOST).map(|h| h.to_str())) else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host)
}

async fn client(socket: WebSocket, web: Arc<Web>) {
    let (mut sink, stream) = socket.split();
    let count = web.clients.fetch_add(1, Ordering::AcqRel) + 1;
    let _count = Decrement(&web.clients);
    if count > web.limits.max_connections {
        tracing::warn!(max = web.limits.max_connections, "server full; refusing a client");
        let _ = sink
            .send(Message::Text(render::web(&Event::Error(ChatError::ServerFull)).into()))
            .await;
        let _ = sink.close().await;
        return;
    }
    let (session, mut outbox) = web.sessions.open().await;
    tokio::select! {
        _ = read_lines(stream, &session, &web) => {}
        _ = write_out(&mut sink, &mut outbox) => {}
    }
    let _ = sink.close().await;
}

/// An event as the text frame every web client of this frontend is sent.
pub fn render(event: &Event) -> Utf8Bytes {
    render::web(event).into()
}

async fn read_lines(mut stream: SplitStream<WebSocket>, session: &Session<'_, Utf8Bytes>, web: &Web) {
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => {
                let line = text.as_str();
                let line = line.strip_suffix('\n').unwrap_or(line);
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.len() > web.limits.max_line {
                    session.error(ChatError::LineTooLong, render);
                } else if let Err(error) = session.line(line.to_string()) {
                    session.error(error, render);
                }
            }
            Message::Binary(_) => session.error(ChatError::Syntax(crate::chat::SyntaxError::UnknownCommand), render),
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => {} // tungstenite answers pings itself
        }
    }
}

/// Sends the outbox, flushing once per batch; returns after a `Close` or a kill.
async fn write_out(sink: &mut SplitSink<WebSocket, Message>, outbox: &mut OutboxRx<Utf8Bytes>) {
    let mut batch = VecDeque::new();
    while outbox.next(&mut batch).await == Next::Send {
        let send = async {
            for message in batch.drain(..) {
                sink.feed(Message::Text(message)).await?;
            }
            sink.flush().await
        };
        let sent = tokio::select! {
            result = send => result.is_ok(),
            _ = outbox.killed() => false,
        };
        if !sent {
            return;
        }
    }
}

struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "LocalHost:8080"),
            ("origin", "http://localhost:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8081")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:8080")])));
    }
}
