//! The frontend's side of the connection handoff (see [`crate::handoff`]): adopting the clients
//! a previous process of this server left connected, parking a copy of each new client with the
//! supervisor and releasing it when the session ends, and the supervisor's request to hand over.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::chat::SessionId;
use crate::handoff::socket::Channel;
use crate::handoff::{MAX_FDS, MAX_RELEASES, Message, SessionSlot};
use crate::journal::{Counts, Part, PositionFile, carry};
use crate::throttle::Warnings;

/// What a client task asks of the handoff task.
enum Request {
    Park(SessionSlot, OwnedFd),
    Release(SessionId),
    /// What the readers left, on a hand-over (see [`carry`](super::carry)): the last request.
    Carry(OwnedFd),
}

/// The client tasks' handle: cheap to clone, never waits.
#[derive(Clone)]
pub struct Store {
    requests: mpsc::UnboundedSender<Request>,
    /// Requests not yet written to the socket.
    outstanding: Arc<AtomicUsize>,
    warnings: Arc<Warnings>,
}

impl Store {
    /// Hands a copy of a new client's connection to the supervisor, with its slot.
    pub fn park(&self, session: SessionId, slot: u32, socket: &impl AsFd) {
        match socket.as_fd().try_clone_to_owned() {
            Ok(copy) => self.request(Request::Park((session, slot), copy)),
            // At the open-file limit: this client is served, but would not outlive this process.
            Err(e) => crate::warn_limited!(self.warnings, session, error = %e, "could not park a client's connection"),
        }
    }

    /// The session ended: the supervisor closes its copy.
    pub fn release(&self, session: SessionId) {
        self.request(Request::Release(session));
    }

    /// Hands the supervisor what the readers left for the next process (a hand-over's last
    /// word): the carry, see [`crate::journal::carry`].
    pub fn carry(&self, parts: &HashMap<SessionId, Part>) {
        match carry::write(parts) {
            Ok(fd) => self.request(Request::Carry(fd)),
            Err(e) => tracing::warn!(error = %e, "could not write what the readers left; it is lost"),
        }
    }

    /// Whether every park and release has reached the supervisor's socket.
    pub fn is_idle(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0
    }

    fn request(&self, request: Request) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        if self.requests.send(request).is_err() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What the supervisor hands a new process: the server's position file, what the previous
/// process's readers left (if it handed over), and the clients it left (session, slot,
/// connection), in the order they were parked.
#[derive(Default)]
pub struct Adoption {
    pub file: Option<std::sync::Arc<PositionFile>>,
    pub carried: HashMap<SessionId, Part>,
    pub clients: Vec<(SessionId, u32, OwnedFd)>,
}

/// An adopted descriptor made a socket of this runtime, with what its socket knows.
pub struct Socket {
    pub id: SessionId,
    pub slot: u32,
    pub stream: std::io::Result<tokio::net::TcpStream>,
    pub peer: std::net::SocketAddr,
    /// Bytes ever written to it and read from it (see [`crate::sys::tcp::byte_counts`]).
    pub counts: Counts,
}

/// Makes the adopted descriptors sockets of this runtime, asking each what it knows. That is six
/// system calls a client; on every core at once, because the clients wait meanwhile (5,000 took
/// 35-45 ms on one core of a slow machine).
pub fn sockets(clients: Vec<(SessionId, u32, OwnedFd)>) -> Vec<Socket> {
    /// Fewer clients than this a thread are not worth another thread.
    const PER_THREAD: usize = 1024;
    sockets_by(clients, PER_THREAD)
}

fn sockets_by(clients: Vec<(SessionId, u32, OwnedFd)>, per_thread_at_least: usize) -> Vec<Socket> {
    let open = |(id, slot, fd): (SessionId, u32, OwnedFd)| {
        let (written, read) = crate::sys::tcp::byte_counts(std::os::fd::AsFd::as_fd(&fd)).ok().unzip();
        let counts = Counts { written, read };
        let stream = std::net::TcpStream::from(fd);
        let peer = stream
            .peer_addr()
            .unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let stream = stream
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpStream::from_std(stream));
        Socket {
            id,
            slot,
            stream,
            peer,
            counts,
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = cores.min(clients.len().div_ceil(per_thread_at_least));
    if threads <= 1 {
        return clients.into_iter().map(open).collect();
    }
    let per_thread = clients.len().div_ceil(threads);
    let mut rest = clients;
    let mut parts = Vec::with_capacity(threads);
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(per_thread));
        parts.push(parking_lot::Mutex::new(std::mem::replace(&mut rest, tail)));
    }
    // Each part is taken by whoever opens it: its thread, or this one if the thread could not start.
    let open_part = |part: &parking_lot::Mutex<Vec<(SessionId, u32, OwnedFd)>>| {
        let part = std::mem::take(&mut *part.lock());
        part.into_iter().map(open).collect::<Vec<_>>()
    };
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|scope| {
        let threads: Vec<_> = parts
            .iter()
            .map(|part| {
                let (runtime, open_part) = (&runtime, &open_part);
                std::thread::Builder::new()
                    .name("adopting".into())
                    .spawn_scoped(scope, move || {
                        let _entered = runtime.enter();
                        open_part(part)
                    })
                    .ok()
            })
            .collect();
        parts
            .iter()
            .zip(threads)
            .flat_map(|(part, thread)| match thread {
                Some(thread) => thread.join().expect("opening a socket does not panic"),
                None => open_part(part),
            })
            .collect()
    })
}

/// Receives what the supervisor hands a new process (see [`Adoption`]), until it says that was
/// all.
pub async fn receive(channel: &Channel) -> std::io::Result<Adoption> {
    let mut adoption = Adoption::default();
    loop {
        match channel.recv().await? {
            Some((Message::PositionFile, fds)) => match fds.first().map(PositionFile::map) {
                Some(Ok(file)) => adoption.file = Some(file),
                Some(Err(e)) => tracing::warn!(error = %e, "cannot map the position file"),
                None => {}
            },
            Some((Message::Carry, fds)) => match fds.first().map(carry::read) {
                Some(Ok(carried)) => adoption.carried = carried,
                Some(Err(e)) => tracing::warn!(error = %e, "cannot read what the previous process left"),
                None => {}
            },
            Some((Message::Adopt(list), fds)) => adoption
                .clients
                .extend(list.into_iter().zip(fds).map(|((id, slot), fd)| (id, slot, fd))),
            Some((Message::Adopted, _)) | None => return Ok(adoption),
            Some((other, _)) => {
                tracing::warn!(message = ?other, "unexpected handoff message before the adoption ended")
            }
        }
    }
}

/// Starts the task that carries parks and releases to the supervisor, in order, as few packets as
/// it can; `hand_over` is cancelled when the supervisor asks this process to hand over.
pub fn start(channel: Channel, hand_over: CancellationToken) -> Store {
    let (requests, rx) = mpsc::unbounded_channel();
    let outstanding = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(Arc::new(channel), rx, outstanding.clone(), hand_over));
    Store {
        requests,
        outstanding,
        warnings: Arc::new(Warnings::new(1, 5)),
    }
}

async fn serve(
    channel: Arc<Channel>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    outstanding: Arc<AtomicUsize>,
    hand_over: CancellationToken,
) {
    let mut pending: Vec<Request> = Vec::new();
    loop {
        tokio::select! {
            received = channel.recv() => match received {
                Ok(Some((Message::HandOver, _))) => {
                    tracing::info!("the supervisor asks for a hand-over");
                    hand_over.cancel();
                }
                Ok(Some((other, _))) => tracing::warn!(message = ?other, "unexpected handoff message"),
                Ok(None) | Err(_) => {
                    // The supervisor is gone (and we go with it): nothing more to park.
                    tracing::warn!("the handoff socket closed");
                    return;
                }
            },
            count = rx.recv_many(&mut pending, 4 * MAX_FDS) => {
                if count == 0 {
                    return;
                }
                if let Err(e) = send(&channel, &mut pending).await {
                    tracing::warn!(error = %e, "could not reach the supervisor's handoff socket");
                    return;
                }
                outstanding.fetch_sub(count, Ordering::AcqRel);
            }
        }
    }
}

/// Sends `pending` in order: each run of parks or of releases as few packets as it takes.
async fn send(channel: &Channel, pending: &mut Vec<Request>) -> std::io::Result<()> {
    let mut parks: Vec<(SessionSlot, OwnedFd)> = Vec::new();
    let mut releases: Vec<SessionId> = Vec::new();
    for request in pending.drain(..) {
        match request {
            Request::Park(id, fd) => {
                if !releases.is_empty() {
                    flush_releases(channel, &mut releases).await?;
                }
                parks.push((id, fd));
                if parks.len() == MAX_FDS {
                    flush_parks(channel, &mut parks).await?;
                }
            }
            Request::Release(id) => {
                if !parks.is_empty() {
                    flush_parks(channel, &mut parks).await?;
                }
                releases.push(id);
                if releases.len() == MAX_RELEASES {
                    flush_releases(channel, &mut releases).await?;
                }
            }
            Request::Carry(fd) => {
                if !parks.is_empty() {
                    flush_parks(channel, &mut parks).await?;
                }
                if !releases.is_empty() {
                    flush_releases(channel, &mut releases).await?;
                }
                channel.send(&Message::Carry, &[fd.as_raw_fd()]).await?;
            }
        }
    }
    if !parks.is_empty() {
        flush_parks(channel, &mut parks).await?;
    }
    if !releases.is_empty() {
        flush_releases(channel, &mut releases).await?;
    }
    Ok(())
}

async fn flush_parks(channel: &Channel, parks: &mut Vec<(SessionSlot, OwnedFd)>) -> std::io::Result<()> {
    let ids = parks.iter().map(|(parked, _)| *parked).collect();
    let fds: Vec<RawFd> = parks.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    channel.send(&Message::Park(ids), &fds).await?;
    // Our copies go now; the supervisor holds its own.
    parks.clear();
    Ok(())
}

async fn flush_releases(channel: &Channel, releases: &mut Vec<SessionId>) -> std::io::Result<()> {
    channel.send(&Message::Release(std::mem::take(releases)), &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sockets_are_opened_on_several_threads_in_their_order() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peers = Vec::new();
        let mut clients = Vec::new();
        for id in 0..10u64 {
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            accepted.set_nonblocking(true).unwrap();
            peers.push((client.local_addr().unwrap(), client));
            clients.push((id, id as u32 + 100, OwnedFd::from(accepted)));
        }
        let opened = sockets_by(clients, 3);
        assert_eq!(opened.len(), 10);
        for (id, socket) in opened.iter().enumerate() {
            assert_eq!((socket.id, socket.slot), (id as u64, id as u32 + 100));
            assert_eq!(socket.peer, peers[id].0);
            assert_eq!(
                socket.counts,
                Counts {
                    written: Some(0),
                    read: Some(0)
                },
                "nothing written or read yet"
            );
            assert!(socket.stream.is_ok());
        }
        // Each is a socket of this runtime.
        let socket = opened.into_iter().nth(7).unwrap().stream.unwrap();
        std::io::Write::write_all(&mut &peers[7].1, b"hi").unwrap();
        socket.readable().await.unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(socket.try_read(&mut buf).unwrap(), 2);
    }
}
