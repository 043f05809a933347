//! The telnet server: the accept loop with its limits, and per client the telnet decoder driving
//! the shared client loop ([`client`](super::client)).

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::accept::{self, Refusals};
use super::admission::{Admission, Ticket};
use super::client::{self, Decode, Input, Opening};
use super::session::{Adopted, Sessions};
use super::telnet::{Decoder, Item};
use super::{Limits, render};
use crate::chat::{ChatError, Event};
use crate::journal::Start;

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
    fn partial(&self) -> bool {
        self.0.partial()
    }

    fn save(&self) -> Vec<u8> {
        self.0.save()
    }

    fn restore(&mut self, saved: &[u8]) -> bool {
        match Decoder::restore(self.0.max_line(), saved) {
            Some(decoder) => {
                self.0 = decoder;
                true
            }
            None => false,
        }
    }

    fn next(&mut self, input: &mut &[u8]) -> Option<Input> {
        Some(match self.0.next(input)? {
            Item::Line(line) => Input::Line(line),
            Item::TooLong => Input::TooLong,
            Item::Answer(bytes) => Input::Reply(Bytes::copy_from_slice(&bytes)),
        })
    }
}

/// Serves the clients a previous process left (`adopted`), and new ones until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    telnet: Arc<Telnet>,
    adopted: Vec<(Adopted, TcpStream)>,
    shutdown: CancellationToken,
) {
    let limits = telnet.limits;
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    for (adopted, stream) in adopted {
        let ticket = admission.admit_adopted(adopted.peer.ip());
        tokio::spawn(task(
            stream,
            Opening::Adopted(Box::new(adopted)),
            telnet.clone(),
            ticket,
        ));
    }

    let refusals = Refusals {
        full: telnet.render(&Event::Error(ChatError::ServerFull)),
        per_ip: telnet.render(&Event::Error(ChatError::TooManyConnections)),
    };
    accept::serve(listener, admission, refusals, shutdown, move |stream, peer, ticket| {
        task(stream, Opening::New(peer), telnet.clone(), ticket)
    })
    .await;
}

/// A client's task, from accept (or adoption) to close: the memory every connection costs, mostly.
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
fn task(stream: TcpStream, opening: Opening, telnet: Arc<Telnet>, ticket: Ticket) -> impl Future<Output = ()> {
    async move {
        let end = connection(stream, opening, &telnet).await;
        tracing::debug!(?end, "telnet client gone");
        drop(ticket);
    }
}

/// A client's whole life: its decoder set up here, then the client loop's future itself, so that
/// the task holds nothing twice (see `a_connection_task_stays_small`).
fn connection(stream: TcpStream, opening: Opening, telnet: &Telnet) -> impl Future<Output = client::End> + '_ {
    let mut decoder = Telnet854(Decoder::new(telnet.limits.max_line));
    if let Opening::Adopted(adopted) = &opening {
        let taken_over = adopted.carried.as_ref().is_some_and(|c| decoder.restore(&c.decoder));
        match crate::journal::recover::start(adopted.input, taken_over) {
            Start::GoOn => {}
            Start::TellLost => adopted.tell(telnet.render(&Event::LineLost)),
            Start::MidLine => {
                // The start of its line died with the previous process: the rest is dropped.
                decoder.0.skip_line();
                adopted.tell(telnet.render(&Event::LineLost));
            }
        }
    }
    let render = |event: &Event| telnet.render(event);
    client::serve(
        stream,
        opening,
        &telnet.sessions,
        decoder,
        &telnet.limits,
        render,
        client::First::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task is this future: its size is memory per connection.
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let telnet = Arc::new(Telnet {
            sessions: Arc::new(Sessions::new(tx, None)),
            color: false,
            limits: crate::frontend::Limits::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let peer = stream.local_addr().unwrap();
        let ticket = Admission::new(1, 1).admit(peer.ip()).ok().unwrap();
        // An adopted client's task is the same future (its `Opening` is boxed).
        let task = task(stream, Opening::New(peer), telnet, ticket);
        let size = std::mem::size_of_val(&task);
        eprintln!("a telnet connection's task: {size} bytes");
        // tokio adds 104 bytes and rounds the task up to 128: at most 792 keeps it in 896.
        assert!(size <= 792, "a telnet connection's task grew to {size} bytes");
    }
}
