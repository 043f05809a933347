//! A client's writer: drains the outbox onto the socket, everything queued in one system call
//! where it fits, and drops a client whose socket takes no byte for `send_timeout` while output
//! waits.

use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::End;
use crate::frontend::outbox::{Dropped, Next, OutboxRx};
use crate::frontend::session::Session;

/// Buffers written in one system call at most (Linux's IOV_MAX): each system call is a packet
/// on the wire, so a batch goes out in as few as it takes.
const MAX_SLICES: usize = 1024;

/// Writes the outbox, everything queued in one system call where it fits; returns after a
/// close (everything sent) or a drop.
#[allow(clippy::manual_async_fn)] // an async fn would store each argument twice
pub(super) fn write_out<'a>(
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
