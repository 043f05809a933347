//! The handoff socket's I/O: packets with descriptors (`SCM_RIGHTS`) over a `SOCK_SEQPACKET`
//! socket pair, on the tokio reactor.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{Layout, MAX_FDS, MAX_PACKET, Message};

/// One end of a handoff socket.
pub struct Channel {
    fd: AsyncFd<OwnedFd>,
    /// The only process whose packets are taken (the supervisor's end: its child's pid).
    sender: Option<u32>,
    /// The peer speaks the unversioned layout (a supervisor of an earlier build): it is answered
    /// in it. Set by the first such packet received.
    unversioned: std::sync::atomic::AtomicBool,
}

/// A new socket pair: (the supervisor's end, the frontend's end), both close-on-exec. The
/// kernel stamps every packet to the supervisor's end with its sender's credentials
/// (`SO_PASSCRED`), which [`Channel::of_child`] checks.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, flags)?;
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::PassCred, &true)?;
    Ok((ours, theirs))
}

impl Channel {
    /// Serves `fd` (a non-blocking `SOCK_SEQPACKET` socket) on the current runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let fd = crate::sys::fd::register(fd, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Self {
            fd,
            sender: None,
            unversioned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Serves the supervisor's end of [`pair`], taking packets from process `pid` alone, of our
    /// own user: a socket pair has no other peer, but a descriptor can be passed on, and a
    /// frontend's end must not serve anyone else to park or release our copies.
    pub fn of_child(fd: OwnedFd, pid: u32) -> io::Result<Self> {
        Ok(Self {
            sender: Some(pid),
            ..Self::new(fd)?
        })
    }

    /// The frontend's end, inherited as `$CHAT_HANDOFF_FD`; `None` without it (run by hand or by
    /// systemd). The variable is removed, so that nothing this process starts inherits it.
    ///
    /// Call it before any thread starts (it changes the environment).
    pub fn inherited() -> Option<OwnedFd> {
        let value = crate::sys::take_env(super::ENV)?;
        let fd = value.parse().ok()?;
        let taken = crate::sys::fd::inherited_socket(fd, SockType::SeqPacket);
        if taken.is_none() {
            tracing::warn!(
                fd,
                "{} names no SOCK_SEQPACKET socket; no connection handoff",
                super::ENV
            );
        }
        taken
    }

    /// Sends one packet with its descriptors (`message.fds()` of them, at most [`MAX_FDS`]).
    pub async fn send(&self, message: &Message, fds: &[RawFd]) -> io::Result<()> {
        debug_assert_eq!(message.fds(), fds.len());
        debug_assert!(fds.len() <= MAX_FDS);
        let bytes = message.encode_as(self.layout());
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|inner| send_now(inner.as_raw_fd(), &bytes, fds)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends a packet now if the socket has room; `WouldBlock` if not.
    pub fn try_send(&self, message: &Message, fds: &[RawFd]) -> io::Result<()> {
        send_now(self.fd.as_raw_fd(), &message.encode_as(self.layout()), fds)
    }

    /// Waits until a packet could be sent.
    pub async fn writable(&self) -> io::Result<()> {
        let mut guard = self.fd.writable().await?;
        guard.clear_ready();
        Ok(())
    }

    /// The next packet and the descriptors that came with it; `None` once the peer is gone. A
    /// packet from another process than the one expected is dropped (and logged).
    pub async fn recv(&self) -> io::Result<Option<(Message, Vec<OwnedFd>)>> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|inner| self.received(recv_now(inner.as_raw_fd(), self.sender))) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                    tracing::warn!(error = %e, "dropped a handoff packet");
                }
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

impl Channel {
    /// The layout packets to the peer go in: the one it spoke last.
    fn layout(&self) -> Layout {
        match self.unversioned.load(std::sync::atomic::Ordering::Relaxed) {
            true => Layout::Unversioned,
            false => Layout::Versioned,
        }
    }

    /// Notes the layout a packet came in.
    #[allow(clippy::type_complexity)]
    fn received(
        &self,
        received: io::Result<Option<(Message, Vec<OwnedFd>, Layout)>>,
    ) -> io::Result<Option<(Message, Vec<OwnedFd>)>> {
        Ok(received?.map(|(message, fds, layout)| {
            let unversioned = layout == Layout::Unversioned;
            if unversioned != self.unversioned.swap(unversioned, std::sync::atomic::Ordering::Relaxed) {
                tracing::info!(
                    ?layout,
                    "the handoff socket's peer speaks another layout: answering in it"
                );
            }
            (message, fds)
        }))
    }

    /// The next packet if one waits; `None` if none does (or the peer is gone). For reading what
    /// a process sent before it exited.
    pub fn try_recv(&self) -> io::Result<Option<(Message, Vec<OwnedFd>)>> {
        match self.received(recv_now(self.fd.as_raw_fd(), self.sender)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            other => other,
        }
    }
}

fn send_now(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    crate::sys::fd::send(fd, bytes, fds)
}

#[allow(clippy::type_complexity)]
fn recv_now(fd: RawFd, sender: Option<u32>) -> io::Result<Option<(Message, Vec<OwnedFd>, Layout)>> {
    let mut buf = vec![0u8; MAX_PACKET];
    let crate::sys::fd::Received {
        len: bytes,
        truncated,
        fds,
        from,
    } = crate::sys::fd::recv(fd, &mut buf)?;
    if bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if let Some(pid) = sender {
        let ours = nix::unistd::getuid().as_raw();
        if from != Some((pid as i32, ours)) {
            // Its descriptors close as `fds` drops.
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("a handoff packet from {from:?} (pid, uid), not from the frontend ({pid}, {ours})"),
            ));
        }
    }
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a handoff packet was truncated",
        ));
    }
    let (message, layout) = Message::decode_with_layout(&buf[..bytes])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if message.fds() != fds.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a handoff packet names {} sessions but carries {} descriptors",
                message.fds(),
                fds.len()
            ),
        ));
    }
    Ok(Some((message, fds, layout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn descriptors_cross_with_their_sessions_in_batches() {
        let (a, b) = pair().unwrap();
        let (a, b) = (Channel::new(a).unwrap(), Channel::new(b).unwrap());
        // 300 descriptors: two packets.
        let files: Vec<std::fs::File> = (0..300).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        let mut got = Vec::new();
        let sending = async {
            for (i, chunk) in raw.chunks(MAX_FDS).enumerate() {
                let ids = (0..chunk.len() as u64).map(|n| (n + (i * MAX_FDS) as u64, 0)).collect();
                a.send(&Message::Park(ids), chunk).await.unwrap();
            }
            a.send(&Message::Adopted, &[]).await.unwrap();
        };
        let receiving = async {
            loop {
                match b.recv().await.unwrap().unwrap() {
                    (Message::Park(ids), fds) => got.extend(ids.into_iter().map(|(id, _)| id).zip(fds)),
                    (Message::Adopted, fds) => {
                        assert!(fds.is_empty());
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        tokio::join!(sending, receiving);
        assert_eq!(got.len(), 300);
        assert!(got.iter().enumerate().all(|(i, (id, _))| *id == i as u64));
        drop(a);
        assert!(b.recv().await.unwrap().is_none(), "the peer's end closed");
    }

    #[tokio::test]
    async fn the_supervisors_end_takes_packets_from_its_child_alone() {
        let (ours, theirs) = pair().unwrap();
        let me = std::process::id();
        let file = std::fs::File::open("/dev/null").unwrap();
        let park = Message::Park(vec![(1, 0)]).encode();
        // From "another process": this one, expecting its child pid to be something else.
        send_now(theirs.as_raw_fd(), &park, &[file.as_raw_fd()]).unwrap();
        let stranger = Channel::of_child(ours.try_clone().unwrap(), me + 1).unwrap();
        let err = stranger.try_recv().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        drop(stranger);
        send_now(theirs.as_raw_fd(), &park, &[file.as_raw_fd()]).unwrap();
        let child = Channel::of_child(ours, me).unwrap();
        let (message, fds) = child.try_recv().unwrap().unwrap();
        assert_eq!((message, fds.len()), (Message::Park(vec![(1, 0)]), 1));
    }

    #[tokio::test]
    async fn a_packet_whose_descriptors_do_not_match_is_refused() {
        let (a, b) = pair().unwrap();
        let b = Channel::new(b).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_now(
            a.as_raw_fd(),
            &Message::Park(vec![(1, 0), (2, 1)]).encode(),
            &[file.as_raw_fd()],
        )
        .unwrap();
        let err = b.recv().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_peer_of_the_unversioned_layout_is_answered_in_it() {
        let (a, b) = pair().unwrap();
        let b = Channel::new(b).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        // A supervisor of an earlier build sends the position file first, as a bare 'M'.
        send_now(a.as_raw_fd(), b"M", &[file.as_raw_fd()]).unwrap();
        let (message, _fds) = b.recv().await.unwrap().unwrap();
        assert_eq!(message, Message::PositionFile);
        b.send(&Message::Release(vec![258]), &[]).await.unwrap();
        let mut buf = [0u8; 64];
        let received = crate::sys::fd::recv(a.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..received.len], b"R\0\0\0\0\0\0\x01\x02");
        // A versioned packet from it again: versioned answers.
        send_now(a.as_raw_fd(), &Message::HandOver.encode(), &[]).unwrap();
        assert_eq!(b.recv().await.unwrap().unwrap().0, Message::HandOver);
        b.send(&Message::Release(vec![1]), &[]).await.unwrap();
        let received = crate::sys::fd::recv(a.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(buf[..received.len].to_vec(), Message::Release(vec![1]).encode());
    }
}
