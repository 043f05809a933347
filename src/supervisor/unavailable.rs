//! While a server is stopped or failed, the supervisor answers on its listening socket itself:
//! `[ERROR] - server unavailable, try again later` on telnet, `503` on the web, then it closes. A
//! client told at once is better off than one left in a backlog that nobody will read. During an
//! ordinary restart (backoff) clients wait in the backlog instead: a process takes them moments
//! later.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::chat::{ChatError, Event};
use crate::config::Kind;
use crate::config::Server;
use crate::frontend::{client, http, render};

/// Refusals being answered at once; past it, connections are closed without a word.
const REFUSING: usize = 64;

/// What a client of an unavailable `server` is told, in its protocol.
pub fn answer(server: &Server) -> Bytes {
    let event = Event::Error(ChatError::ServerUnavailable);
    match server.settings.kind {
        Kind::Tcp => render::telnet(&event, server.settings.color),
        Kind::Ws => http::refusal(503, &event.plain()),
    }
}

/// Answers every new connection on a server's socket until dropped.
pub struct Answering(JoinHandle<()>);

impl Answering {
    /// Starts answering on (a copy of) `listener`.
    pub fn start(server: &Server, listener: &TcpListener) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
        Ok(Self(tokio::spawn(serve(listener, answer(server)))))
    }
}

impl Drop for Answering {
    /// An aborted task is never polled again, so nothing is accepted once this returns: the next
    /// process finds every later connection in the backlog. Refusals under way finish.
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(listener: tokio::net::TcpListener, answer: Bytes) {
    let refusing = Arc::new(Semaphore::new(REFUSING));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    let answer = answer.clone();
                    tokio::spawn(async move {
                        client::refuse(stream, answer).await;
                        drop(permit);
                    });
                }
            }
            // Out of descriptors, most likely: back off rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn server(kind: &str, color: bool) -> Server {
        let text = format!("[[server]]\nname = \"s\"\nkind = \"{kind}\"\nport = 0\ncolor = {color}\n");
        crate::config::parse(Path::new("s.toml"), Path::new("/"), &text)
            .unwrap()
            .servers[0]
            .clone()
    }

    #[test]
    fn telnet_gets_the_error_line_in_its_colours() {
        assert_eq!(
            &answer(&server("tcp", false))[..],
            b"[ERROR] - server unavailable, try again later\r\n"
        );
        let colored = answer(&server("tcp", true));
        assert!(colored.starts_with(b"\x1b["), "{colored:?}");
        assert!(
            colored.ends_with(b" - server unavailable, try again later\r\n"),
            "{colored:?}"
        );
    }

    #[test]
    fn the_web_gets_a_503() {
        let text = String::from_utf8(answer(&server("ws", true)).to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(
            text.ends_with("\r\n\r\n[ERROR] - server unavailable, try again later\n"),
            "{text}"
        );
    }
}
