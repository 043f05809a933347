//! One client connection, whatever its protocol: a reader that decodes the client's bytes into
//! lines for the kernel, throttled and fair, and a writer that drains the client's outbox onto
//! its socket. When either ends, or the client is dropped, both halves close at once and the
//! session closes once.
//!
//! The reader takes at most [`READ_CHUNK`] bytes at a time and yields to the scheduler after each
//! chunk, so a flooding client cannot starve the others of its thread: they take turns, as in any
//! event loop. Each item it decodes costs a token of the client's bucket (`input_rate` a second,
//! `input_burst` at once): past it the reader simply stops reading until the bucket refills, so
//! TCP slows the sender and nothing is lost. Lines wait for room on their way to the kernel
//! (see [`session`](super::session)) the same way.
//!
//! The writer writes whatever is queued in one system call, and drops a client whose socket
//! accepts no byte for `send_timeout` while output waits.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Limits;
use super::handoff::Store;
use super::outbox::Dropped;
use super::session::{Adopted, Sessions};
use crate::chat::{ChatError, Event};
use crate::throttle::TokenBucket;
use read::read_in;
use write::write_out;

mod read;
mod write;

/// Bytes read from a client at a time.
pub const READ_CHUNK: usize = 2048;

/// What a client's bytes mean, decoded by its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A command line for the kernel.
    Line(String),
    /// A line over `max_line`, skipped.
    TooLong,
    /// Something the frontend refuses itself with this error (a binary WebSocket message).
    Refuse(ChatError),
    /// Bytes to send back (a refused telnet option).
    Reply(Bytes),
    /// A WebSocket pong to send back; only the latest waits.
    Pong(Bytes),
    /// Nothing to do (a pong from the client: it is alive).
    Nothing,
    /// The client is done: send these bytes (a close frame), if any, and close.
    Close(Option<Bytes>),
}

/// A protocol's input side.
pub trait Decode: Send {
    /// Decodes from the front of `input` up to the next item, leaving the rest in `input`; `None`
    /// once `input` is used up.
    fn next(&mut self, input: &mut &[u8]) -> Option<Input>;

    /// Whether part of an item waits for the rest (it would die with this process).
    fn partial(&self) -> bool;

    /// Its whole state, for the next process to take over on a planned hand-over (see
    /// [`carry`](super::carry)).
    fn save(&self) -> Vec<u8>;

    /// Takes over the state a previous process saved; false if it cannot (it stays as it was).
    fn restore(&mut self, saved: &[u8]) -> bool;
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client closed it (or reset it).
    Client,
    /// The server closed it after its last output (logout, a WebSocket close).
    Closed,
    Dropped(Dropped),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Client => f.write_str("closed by the client"),
            End::Closed => f.write_str("closed after a logout or a WebSocket close"),
            End::Dropped(why) => write!(f, "dropped: {why}"),
        }
    }
}

/// Whose session a connection is.
pub enum Opening {
    /// A new client: a new session, and its connection parked with the supervisor.
    New(SocketAddr),
    /// A client a previous process of this server served (already parked); boxed, so that every
    /// connection's task stays small.
    Adopted(Box<Adopted>),
}

/// Bytes a client sent before its connection became this loop's: a WebSocket's after its upgrade
/// request, if any came with it (rare). Boxed: every connection's task keeps the argument, and
/// 8 bytes instead of a `Bytes`' 32 keep a telnet task in a smaller allocation (tokio rounds a
/// task to 128 bytes).
#[derive(Default)]
pub struct First(Option<Box<Bytes>>);

impl First {
    pub fn new(bytes: Bytes) -> Self {
        Self((!bytes.is_empty()).then(|| Box::new(bytes)))
    }

    fn into_buf(self) -> BytesMut {
        self.0.map_or_else(BytesMut::new, |bytes| BytesMut::from(*bytes))
    }
}

/// Serves one client until it ends; its socket is closed on return.
///
/// Written as a function returning an `async move` block, as are the reader and the writer: an
/// `async fn` stores each argument twice in its future (once as passed, once as bound), and this
/// future is every connection's memory (see `a_connection_task_stays_small`).
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
pub fn serve<'a>(
    stream: TcpStream,
    opening: Opening,
    sessions: &'a Sessions,
    mut decoder: impl Decode + 'a,
    limits: &'a Limits,
    render: impl Fn(&Event) -> Bytes + Sync + 'a,
    first: First,
) -> impl Future<Output = End> + 'a {
    // Opened here, before the task's future is: what opening takes is not kept in it.
    let (session, mut outbox, reads, carried, announced) = match opening {
        Opening::New(peer) => {
            let (session, outbox, announced) = sessions.open_now(peer);
            if let Some(store) = sessions.parking() {
                store.park(session.id, session.slot(), &stream);
            }
            (session, outbox, true, None, announced)
        }
        Opening::Adopted(mut adopted) => {
            let (reads, carried) = (adopted.read, adopted.carried.take());
            let (session, outbox) = sessions.resume(*adopted);
            (session, outbox, reads, carried, true)
        }
    };
    let parked = sessions.parking().map(|store| ParkedCopy {
        store,
        session: session.id,
        socket: std::os::fd::AsRawFd::as_raw_fd(&stream),
    });
    async move {
        if !announced {
            // The queue to the kernel was full (a long kernel outage under load): the opening
            // goes before anything the client sends. Rare, so boxed.
            Box::pin(sessions.announce(session.id)).await;
        }
        let mut bucket = TokenBucket::new(limits.input_rate, limits.input_burst, Instant::now());
        let end = tokio::select! {
            end = read_in(&stream, reads, first.into_buf(), carried, &session, &mut decoder, &mut bucket, &render) => end,
            end = write_out(&stream, &mut outbox, &session, limits.send_timeout) => end,
        };
        session.ended(&end);
        drop(parked);
        drop(stream);
        end
    }
}

/// A connection whose copy waits with the supervisor. However its session ends (a panic
/// included), the connection is shut down, since the copy would keep it open, and the copy is
/// released.
struct ParkedCopy<'a> {
    store: &'a Store,
    session: crate::chat::SessionId,
    socket: std::os::fd::RawFd,
}

impl Drop for ParkedCopy<'_> {
    fn drop(&mut self) {
        // The socket outlives this guard (it is dropped before it): still the same socket.
        let _ = nix::sys::socket::shutdown(self.socket, nix::sys::socket::Shutdown::Both);
        self.store.release(self.session);
    }
}

/// Sends `message` to a client being turned away and closes, within a second whatever it does.
pub async fn refuse(mut stream: TcpStream, message: Bytes) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&message).await?;
        stream.shutdown().await?;
        // Read what it sent until it closes, so that closing does not reset the connection
        // before it has read the message.
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}
