//! A Unix stream registered with the event loop for input only, for the kernel links.
//!
//! Linux wakes every `EPOLLOUT` watcher of a Unix stream socket each time its peer reads (the
//! kernel's `unix_write_space` runs whenever a sent buffer is freed, full socket or not), and
//! tokio's own `UnixStream` always watches for `EPOLLOUT`. So every frame a frontend sent woke it
//! again once the kernel had read it, and every frame the kernel sent woke the kernel again once
//! the frontend had read it: half of all the wake-ups of the hop, each one an interrupt to another
//! core. Here the socket is watched for input only; a write that finds the socket full registers
//! a second descriptor of it (made up front, so that waiting for room never needs a new file) for
//! `EPOLLOUT` until a write takes all it was given.

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
    let spare = stream.try_clone()?;
    let read = Arc::new(watch(stream, Interest::READABLE)?);
    let write = WriteHalf {
        stream: read.clone(),
        room: Room::Spare(Some(spare)),
    };
    Ok((ReadHalf(read), write))
}

/// Registers `stream` with the runtime for `interest` only.
fn watch(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    crate::sys::fd::register(stream, interest)
}

/// The input half: readable readiness only.
pub struct ReadHalf(Arc<AsyncFd<UnixStream>>);

/// The output half: writes at once, and waits for room only when the socket is full. Dropped,
/// it shuts the socket's write side down, as tokio's halves do: the peer reads the end.
pub struct WriteHalf {
    stream: Arc<AsyncFd<UnixStream>>,
    room: Room,
}

/// A second descriptor of the socket: kept aside, or watched for room while writes wait for it.
enum Room {
    Spare(Option<UnixStream>),
    Watched(AsyncFd<UnixStream>),
}

impl Room {
    /// Stops watching for room, or every read of the peer wakes us.
    fn unwatch(&mut self) {
        *self = match std::mem::replace(self, Room::Spare(None)) {
            Room::Watched(watched) => Room::Spare(Some(watched.into_inner())),
            spare => spare,
        };
    }

    /// The descriptor watched for room, registered now if it was not.
    fn watched(&mut self) -> io::Result<&mut AsyncFd<UnixStream>> {
        if let Room::Spare(spare) = self {
            let spare = spare.take().ok_or_else(|| io::Error::other("no spare descriptor"))?;
            *self = Room::Watched(watch(spare, Interest::WRITABLE)?);
        }
        match self {
            Room::Watched(watched) => Ok(watched),
            Room::Spare(_) => unreachable!("registered above"),
        }
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let _ = self.stream.get_ref().shutdown(std::net::Shutdown::Write);
    }
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
                    // All taken: the socket has room again. (After a partial write the caller
                    // is back at once with the rest, and likely finds it full.)
                    if written.as_ref().is_ok_and(|n| *n == buf.len()) {
                        this.room.unwatch();
                    }
                    return Poll::Ready(written);
                }
            }
            // Cleared before the next attempt: room made after it is a new edge, seen.
            ready!(this.room.watched()?.poll_write_ready(cx))?.clear_ready();
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

    /// As with tokio's halves, the peer reads the end once the write half is dropped.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_write_half_ends_the_stream() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let (_a_read, a_write) = split(a).unwrap();
        let (mut b_read, _b_write) = split(b).unwrap();
        drop(a_write);
        let mut got = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), b_read.read_to_end(&mut got));
        assert_eq!(read.await.expect("the end arrives").unwrap(), 0);
    }
}
