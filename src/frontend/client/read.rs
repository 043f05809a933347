//! A client's reader: it reads at most [`READ_CHUNK`] bytes at a time, decodes the whole chunk,
//! records in the journal what it has in hand, and handles each item in its turn (a token of the
//! client's bucket; the client caught up on its output; room among its lines in flight). On a
//! hand-over it leaves what it holds for the next process.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Decode, End, Input, READ_CHUNK};
use crate::chat::{ChatError, Event};
use crate::frontend::carry;
use crate::frontend::session::Session;
use crate::throttle::TokenBucket;

/// Reads the client until it ends (`reads` false: never; and not once this process hands its
/// clients over: what they send then waits in their sockets for the next process, and what the
/// reader holds is left for it, see [`carry`](crate::frontend::carry)). `buf`: bytes read already;
/// `carried`: what a previous process left undone (its decoder is restored already).
#[allow(clippy::too_many_arguments)]
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
pub(super) fn read_in<'a, D: Decode>(
    read: &'a TcpStream,
    reads: bool,
    buf: BytesMut,
    carried: Option<Box<crate::journal::Part>>,
    session: &'a Session<'a>,
    decoder: &'a mut D,
    bucket: &'a mut TokenBucket,
    render: &'a (dyn Fn(&Event) -> Bytes + Sync),
) -> impl Future<Output = End> + 'a {
    // Made before the future is, so that the future keeps its parts once, not also as arguments.
    let mut reader = Reader {
        read,
        session,
        decoder,
        bucket,
        render,
        consumed: session.read_base,
        buf,
        items: carried.map(|c| carry::items(c.held)).unwrap_or_default(),
        kept: false,
        busy: false,
    };
    async move {
        if !reads {
            return std::future::pending().await;
        }
        loop {
            if reader.items.is_empty() {
                if reader.buf.is_empty() {
                    reader.keep_decoder();
                    // Polled in place: `readable()` would keep a 168-byte waiter in every idle
                    // connection's task.
                    if std::future::poll_fn(|cx| reader.read.poll_read_ready(cx))
                        .await
                        .is_err()
                    {
                        return End::Client;
                    }
                    if reader.session.handing_over() {
                        return std::future::pending().await;
                    }
                    match reader.read_chunk() {
                        Chunk::Read => {}
                        Chunk::Nothing => continue,
                        Chunk::End => return End::Client,
                    }
                }
                reader.decode_chunk();
            }
            reader.chunk_begins();
            if !reader.handle_items().await {
                return std::future::pending().await;
            }
            reader.chunk_done();
            // A chunk done: the other clients of this thread have their turn before the next one.
            tokio::task::yield_now().await;
        }
    }
}

/// A client's reader: its socket and decoder, and what it read and has not yet handled. The rarely
/// taken waits (a throttled or a behind client) are boxed, so that every idle connection's task
/// stays small.
struct Reader<'a, D> {
    read: &'a TcpStream,
    session: &'a Session<'a>,
    decoder: &'a mut D,
    bucket: &'a mut TokenBucket,
    render: &'a (dyn Fn(&Event) -> Bytes + Sync),
    /// Bytes read from the socket ever (by this process and earlier ones).
    consumed: u64,
    /// Held only while it has bytes: an idle client keeps no read buffer.
    buf: BytesMut,
    /// Decoded and not yet handled: at first, what the previous process left undone.
    items: VecDeque<Input>,
    /// Whether the decoder's state is left for a hand-over (it holds part of an item).
    kept: bool,
    /// Set while it waits with items in hand: a hand-over waits for it to handle or leave them.
    /// (The frontend runs on one thread: between its waits a reader cannot be caught midway.)
    busy: bool,
}

/// What a read from the socket brought.
enum Chunk {
    Read,
    /// Nothing after all (it would block).
    Nothing,
    /// The client closed (or reset) the connection.
    End,
}

impl<D: Decode> Reader<'_, D> {
    /// Leaves the decoder's state for a hand-over while it holds part of an item.
    fn keep_decoder(&mut self) {
        if self.decoder.partial() != self.kept {
            self.kept = self.decoder.partial();
            let part = self.kept.then(|| carry::part(self.decoder.save(), [], self.render));
            self.session.keep(part);
        }
        self.buf = BytesMut::new();
    }

    /// Reads what the socket has, up to [`READ_CHUNK`] bytes.
    fn read_chunk(&mut self) -> Chunk {
        self.buf.reserve(READ_CHUNK);
        // Until what it reads is recorded, a read is a moment where input could die unseen.
        self.session.reading(Some(self.consumed));
        match self.read.try_read_buf(&mut self.buf) {
            Ok(0) => Chunk::End,
            Ok(n) => {
                self.session.heard();
                self.consumed += n as u64;
                Chunk::Read
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.session.reading(None);
                Chunk::Nothing
            }
            Err(_) => Chunk::End,
        }
    }

    /// Decodes the whole chunk first, so that the next process, should this one die while the
    /// items wait their turn, knows what died with it (see [`crate::journal`]).
    fn decode_chunk(&mut self) {
        let mut input = &self.buf[..];
        while let Some(item) = self.decoder.next(&mut input) {
            self.items.push_back(item);
        }
        self.buf.clear();
        if self.kept {
            // Stale now: until it is left again, a hand-over's successor goes by the position
            // file, which says what died.
            self.kept = false;
            self.session.keep(None);
        }
    }

    /// Records, for the next process should this one die, what it now has in hand.
    fn chunk_begins(&self) {
        self.session.input_held(!self.items.is_empty(), self.decoder.partial());
        self.session.reading(None);
    }

    /// Handles every decoded item, each in its turn; false if the reader is to read no more (a
    /// hand-over began, and what it holds is left for the next process; or the client closed).
    #[allow(clippy::manual_async_fn)] // an async fn would store `self` twice
    fn handle_items(&mut self) -> impl Future<Output = bool> + '_ {
        async move {
            while let Some(item) = self.items.pop_front() {
                // Each item costs a token; without one the client waits, unread. So does a client
                // with more output waiting than it reads. A hand-over meanwhile: the rest is left.
                let mut waited = !self.session.handing_over();
                if waited
                    && !self.bucket.unlimited()
                    && let Err(wait) = self.bucket.take(Instant::now())
                {
                    self.in_hand();
                    waited = Box::pin(throttled(self.bucket, wait, self.session)).await;
                }
                if waited && self.session.is_behind() {
                    self.in_hand();
                    waited = Box::pin(caught_up(self.session)).await;
                }
                if !waited {
                    self.items.push_front(item);
                    let items = std::mem::take(&mut self.items);
                    self.session
                        .keep(Some(carry::part(self.decoder.save(), items, self.render)));
                    self.busy = false;
                    self.session.busy(false);
                    return false;
                }
                match handle(item, self.session, self.render) {
                    Handled::Done => {}
                    Handled::Wait(wait) => {
                        self.in_hand();
                        if let Err(error) = Box::pin(self.session.line_after(*wait)).await {
                            self.session.error(error, self.render);
                        }
                    }
                    // The writer ends the connection once that is sent; read nothing more.
                    Handled::Closing => return false,
                }
            }
            if self.busy {
                self.busy = false;
                self.session.busy(false);
            }
            true
        }
    }

    /// Marks the reader as waiting with items in hand, once.
    fn in_hand(&mut self) {
        if !self.busy {
            self.busy = true;
            self.session.busy(true);
        }
    }

    /// Every item handled: an idle client keeps no item buffer either (160 bytes a connection,
    /// measured), and has nothing in hand but, perhaps, the start of a line.
    fn chunk_done(&mut self) {
        self.items = VecDeque::new();
        self.session.input_held(false, self.decoder.partial());
    }
}

/// What became of an item handed to [`handle`].
enum Handled {
    Done,
    /// A line waits for room on its way to the kernel (boxed at once: the wait, 104 bytes, is not
    /// kept in every task).
    Wait(Box<crate::frontend::session::Wait>),
    /// The client said goodbye: what is queued goes out, then the connection closes.
    Closing,
}

/// Acts on one decoded item, if that needs no wait.
fn handle(item: Input, session: &Session<'_>, render: &(dyn Fn(&Event) -> Bytes + Sync)) -> Handled {
    match item {
        Input::Line(line) => match session.line_now(line) {
            Ok(()) => {}
            Err(wait) => return Handled::Wait(Box::new(wait)),
        },
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
            return Handled::Closing;
        }
    }
    Handled::Done
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
