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

use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Limits;
use super::carry::{self, Carried};
use super::handoff::Store;
use super::outbox::{Dropped, Next, OutboxRx};
use super::session::{Adopted, Session, Sessions};
use crate::chat::{ChatError, Event};
use crate::throttle::TokenBucket;

/// Bytes read from a client at a time.
pub const READ_CHUNK: usize = 2048;
/// Buffers written in one system call at most (Linux's IOV_MAX): each system call is a packet
/// on the wire, so a batch goes out in as few as it takes.
const MAX_SLICES: usize = 1024;

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

/// The default `ping_interval` (see [`Limits`]).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

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
    let parked = sessions.parking().map(|store| Parked {
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
struct Parked<'a> {
    store: &'a Store,
    session: crate::chat::SessionId,
    socket: std::os::fd::RawFd,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        // The socket outlives this guard (it is dropped before it): still the same socket.
        let _ = nix::sys::socket::shutdown(self.socket, nix::sys::socket::Shutdown::Both);
        self.store.release(self.session);
    }
}

/// Reads the client until it ends (`reads` false: never; and not once this process hands its
/// clients over: what they send then waits in their sockets for the next process, and what the
/// reader holds is left for it, see [`carry`](super::carry)). `buf`: bytes read already;
/// `carried`: what a previous process left undone (its decoder is restored already).
#[allow(clippy::too_many_arguments)]
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
fn read_in<'a>(
    read: &'a TcpStream,
    reads: bool,
    mut buf: BytesMut,
    carried: Option<Box<Carried>>,
    session: &'a Session<'a>,
    decoder: &'a mut impl Decode,
    bucket: &'a mut TokenBucket,
    render: &'a (dyn Fn(&Event) -> Bytes + Sync),
) -> impl Future<Output = End> + 'a {
    async move {
        // Held only while it has bytes: an idle client keeps no read buffer. The rarely taken waits
        // (a throttled or a behind client) are boxed, so that every idle connection's task stays small.
        if !reads {
            return std::future::pending().await;
        }
        // Bytes read from the socket ever (by this process and earlier ones).
        let mut consumed = session.read_base;
        // Decoded and not yet handled: at first, what the previous process left undone.
        let mut items = carried.map(|c| c.items).unwrap_or_default();
        // Whether the decoder's state is left for a hand-over (it holds part of an item).
        let mut kept = false;
        loop {
            if items.is_empty() {
                if buf.is_empty() {
                    if decoder.partial() != kept {
                        kept = decoder.partial();
                        session.keep(kept.then(|| carry::part(&decoder.save(), [], render)));
                    }
                    buf = BytesMut::new();
                    // Polled in place: `readable()` would keep a 168-byte waiter in every idle
                    // connection's task.
                    if std::future::poll_fn(|cx| read.poll_read_ready(cx)).await.is_err() {
                        return End::Client;
                    }
                    if session.handing_over() {
                        return std::future::pending().await;
                    }
                    buf.reserve(READ_CHUNK);
                    // Until what it reads is recorded, a read is a moment where input could die unseen.
                    session.reading(Some(consumed));
                    match read.try_read_buf(&mut buf) {
                        Ok(0) => return End::Client,
                        Ok(n) => {
                            session.heard();
                            consumed += n as u64;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            session.reading(None);
                            continue;
                        }
                        Err(_) => return End::Client,
                    }
                }
                // The whole chunk is decoded first, so that the next process, should this one die
                // while the items wait their turn, knows what died with it (see
                // `crate::handoff::state`).
                let mut input = &buf[..];
                while let Some(item) = decoder.next(&mut input) {
                    items.push_back(item);
                }
                buf.clear();
                if kept {
                    // Stale now: until it is left again, a hand-over's successor goes by the
                    // position file, which says what died.
                    kept = false;
                    session.keep(None);
                }
            }
            session.input_held(!items.is_empty(), decoder.partial());
            session.reading(None);
            // Set while it waits with items in hand: a hand-over waits for it to handle or leave them.
            // (The frontend runs on one thread: between its waits a reader cannot be caught midway.)
            let mut busy = false;
            while let Some(item) = items.pop_front() {
                // Each item costs a token; without one the client waits, unread. So does a client
                // with more output waiting than it reads. A hand-over meanwhile: the rest is left.
                let mut waited = true;
                if session.handing_over() {
                    waited = false;
                } else if !bucket.unlimited()
                    && let Err(wait) = bucket.take(Instant::now())
                {
                    in_hand(session, &mut busy);
                    waited = Box::pin(throttled(bucket, wait, session)).await;
                }
                if waited && session.is_behind() {
                    in_hand(session, &mut busy);
                    waited = Box::pin(caught_up(session)).await;
                }
                if !waited {
                    items.push_front(item);
                    session.keep(Some(carry::part(&decoder.save(), items, render)));
                    session.busy(false);
                    return std::future::pending().await;
                }
                match item {
                    Input::Line(line) => {
                        // Boxed at once: the wait (104 bytes) is not kept in every task.
                        let sent = match session.line_now(line).map_err(Box::new) {
                            Ok(()) => Ok(()),
                            Err(wait) => {
                                in_hand(session, &mut busy);
                                Box::pin(session.line_after(*wait)).await
                            }
                        };
                        if let Err(error) = sent {
                            session.error(error, render);
                        }
                    }
                    Input::TooLong => session.error(ChatError::LineTooLong, render),
                    Input::Refuse(error) => session.error(error, render),
                    Input::Reply(bytes) => session.reply(bytes),
                    Input::Pong(bytes) => session.pong(bytes),
                    Input::Nothing => {}
                    Input::Close(last) => {
                        if let Some(last) = last {
                            session.reply(last);
                        }
                        session.close_after_output();
                        // The writer ends the connection once that is sent; read nothing more.
                        return std::future::pending::<End>().await;
                    }
                }
            }
            if busy {
                session.busy(false);
            }
            // An idle client keeps no item buffer either (160 bytes a connection, measured).
            items = std::collections::VecDeque::new();
            // All handed over but, perhaps, the start of a line.
            session.input_held(false, decoder.partial());
            // A chunk done: the other clients of this thread have their turn before the next one.
            tokio::task::yield_now().await;
        }
    }
}

/// Marks the reader as waiting with items in hand, once.
fn in_hand(session: &Session<'_>, busy: &mut bool) {
    if !*busy {
        *busy = true;
        session.busy(true);
    }
}

/// Waits until the bucket has a token for the item at hand, and takes it; false if this process
/// begins to hand its clients over first.
async fn throttled(bucket: &mut TokenBucket, mut wait: Duration, session: &Session<'_>) -> bool {
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = session.hand_over_begun() => return false,
        }
        match bucket.take(Instant::now()) {
            Ok(()) => return true,
            Err(more) => wait = more,
        }
    }
}

/// Waits while the client is behind on its output; false if this process begins to hand its
/// clients over first.
async fn caught_up(session: &Session<'_>) -> bool {
    tokio::select! {
        () = session.caught_up() => true,
        () = session.hand_over_begun() => false,
    }
}

/// Writes the outbox, everything queued in one system call where it fits; returns after a
/// close (everything sent) or a drop.
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
fn write_out<'a>(
    write: &'a TcpStream,
    outbox: &'a mut OutboxRx,
    session: &'a Session<'a>,
    send_timeout: Duration,
) -> impl Future<Output = End> + 'a {
    async move {
        let mut batch: VecDeque<Bytes> = VecDeque::new();
        loop {
            match outbox.next(&mut batch).await {
                Next::Send => {}
                Next::Close => return End::Closed,
                Next::Dropped(why) => return End::Dropped(why),
            }
            while !batch.is_empty() {
                let written = {
                    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                    let count = batch.len().min(MAX_SLICES);
                    let mut bytes_out = 0;
                    for (slice, bytes) in slices.iter_mut().zip(batch.iter()) {
                        *slice = IoSlice::new(bytes);
                        bytes_out += bytes.len();
                    }
                    outbox.writing(bytes_out);
                    let written = write.try_write_vectored(&slices[..count]);
                    outbox.writing(0);
                    written
                };
                match written {
                    Ok(0) => return End::Client,
                    Ok(mut n) => {
                        outbox.sent(n);
                        while n > 0 {
                            let first = batch.front_mut().expect("written bytes were queued");
                            if n >= first.len() {
                                n -= first.len();
                                batch.pop_front();
                            } else {
                                first.advance(n);
                                n = 0;
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if let Some(end) = Box::pin(writable(write, outbox, session, send_timeout)).await {
                            return end;
                        }
                    }
                    Err(_) => return End::Client,
                }
            }
        }
    }
}

/// Waits until a socket that refused bytes takes some again; `Some(end)` if the client is to go
/// instead: it took nothing for `send_timeout`, or was dropped meanwhile.
async fn writable(write: &TcpStream, outbox: &OutboxRx, session: &Session<'_>, send_timeout: Duration) -> Option<End> {
    let deadline = outbox.blocked(Instant::now()) + send_timeout;
    tokio::select! {
        writable = tokio::time::timeout_at(deadline, write.writable()) => match writable {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some(End::Client),
            Err(_) => {
                let why = Dropped::SendTimeout(send_timeout);
                session.drop_client(why);
                Some(End::Dropped(why))
            }
        },
        // Dropped meanwhile (its queue passed the bound, or it went silent).
        why = outbox.dropped() => Some(End::Dropped(why)),
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
