//! A Unix stream registered with the event loop for input only, for the kernel links.
//!
//! Linux wakes every `EPOLLOUT` watcher of a Unix stream socket each time its peer reads (the
//! kernel's `unix_write_space` runs whenever a sent buffer is freed, full socket or not), and
//! tokio's own `UnixStream` always watches for `EPOLLOUT`. So every frame a frontend sent woke it
//! again once the kernel had read it, and every frame the kernel sent woke the kernel again once
//! the frontend had read it: half of all the wake-ups of the hop, each one an interrupt to another
//! core. Here the socket is watched for input only; a write that finds the socket full registers
//! a second descriptor of it for `EPOLLOUT` until a write goes through again.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Splits a connected stream into halves that wake the runtime only for input (or for room to
/// write, while a write waits for it).
pub fn split(stream: tokio::net::UnixStream) -> io::Result<(ReadHalf, WriteHalf)> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(true)?;
    let read = Arc::new(watch(stream, Interest::READABLE)?);
    let write = WriteHalf {
        stream: read.clone(),
        room: None,
    };
    Ok((ReadHalf(read), write))
}

/// Registers `stream` with the runtime for `interest` only.
fn watch(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: the `AsyncFd` owns the stream, which owns its descriptor: it stays open, and the
    // same, until the `AsyncFd` is dropped (and deregistered).
    Ok(unsafe { AsyncFd::register_with_interest(stream, interest) }?)
}

/// The input half: readable readiness only.
pub struct ReadHalf(Arc<AsyncFd<UnixStream>>);

/// The output half: writes at once, and waits for room only when the socket is full.
pub struct WriteHalf {
    stream: Arc<AsyncFd<UnixStream>>,
    /// A second descriptor of the socket, watched for room, while a write waits for it.
    room: Option<AsyncFd<UnixStream>>,
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let unfilled_len = unfilled.len();
            match guard.try_io(|stream| stream.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    // A short read emptied the socket: the next bytes are a new edge, so the
                    // next read waits for them instead of costing a system call that finds none
                    // (as tokio's own streams do).
                    if n > 0 && n < unfilled_len {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match this.stream.get_ref().write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                written => {
                    // Room again: stop watching for it, or every read of the peer wakes us.
                    this.room = None;
                    return Poll::Ready(written);
                }
            }
            let room = match &mut this.room {
                Some(room) => room,
                none => {
                    let watcher = this.stream.get_ref().try_clone()?;
                    none.insert(watch(watcher, Interest::WRITABLE)?)
                }
            };
            // Cleared before the next attempt: room made after it is a new edge, seen.
            ready!(room.poll_write_ready(cx))?.clear_ready();
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// More than a socket buffer through the halves both ways: the writer waits for room and
    /// is woken when the reader makes it; nothing is lost or reordered.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_socket_waits_for_room_and_loses_nothing() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let (mut a_read, mut a_write) = split(a).unwrap();
        let (mut b_read, mut b_write) = split(b).unwrap();
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            a_write.write_all(&data).await.unwrap();
            a_write.shutdown().await.unwrap();
            b_write.write_all(b"back").await.unwrap();
        });
        let mut got = Vec::new();
        b_read.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes changed on the way");
        let mut back = [0u8; 4];
        a_read.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
        writer.await.unwrap();
    }
}
