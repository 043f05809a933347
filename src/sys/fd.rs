//! Descriptors: registered with tokio's event loop, passed between processes with `SCM_RIGHTS`,
//! and taken over from the environment a process was started with.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, SockType, UnixCredentials, recvmsg, sendmsg};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Descriptors one packet may carry at most (Linux's `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// What owns its descriptor for the whole of its life, and always answers the same one: the
/// condition on which tokio registers a descriptor with its event loop.
pub trait OwnsFd: AsRawFd + sealed::Sealed {}
impl OwnsFd for OwnedFd {}
impl OwnsFd for std::os::unix::net::UnixStream {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::os::fd::OwnedFd {}
    impl Sealed for std::os::unix::net::UnixStream {}
}

/// `inner`, registered with the current runtime's event loop for `interest`.
pub fn register<T: OwnsFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` owns its descriptor (see `OwnsFd`, implemented only for such types), and the
    // `AsyncFd` owns `inner`: the descriptor stays open, and the same, until it is dropped.
    Ok(unsafe { AsyncFd::register_with_interest(inner, interest) }?)
}

/// One packet received with [`recv`].
pub struct Received {
    /// Bytes of the packet (in the buffer given).
    pub len: usize,
    /// The packet or its descriptors did not fit, and were cut.
    pub truncated: bool,
    /// The descriptors that came with it, now this process's.
    pub fds: Vec<OwnedFd>,
    /// Its sender's pid and uid, if the socket has `SO_PASSCRED`.
    pub from: Option<(i32, u32)>,
}

/// Receives one packet into `buf` without waiting (`WouldBlock` if none waits), with up to
/// [`MAX_FDS`] descriptors (close-on-exec) and its sender's credentials.
pub fn recv(socket: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS], UnixCredentials);
    let mut iov = [IoSliceMut::new(buf)];
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
    let received = recvmsg::<()>(socket, &mut iov, Some(&mut space), flags)?;
    let mut fds = Vec::new();
    let mut from = None;
    // On MSG_CTRUNC nix refuses to walk the control messages: whatever arrived then stays
    // open, which only a peer breaking the protocol can cause.
    if let Ok(cmsgs) = received.cmsgs() {
        for cmsg in cmsgs {
            match cmsg {
                ControlMessageOwned::ScmRights(received) => {
                    // SAFETY: the kernel just installed these descriptors in our table for this
                    // call, and nothing else knows them.
                    fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
                ControlMessageOwned::ScmCredentials(creds) => from = Some((creds.pid(), creds.uid())),
                _ => {}
            }
        }
    }
    Ok(Received {
        len: received.bytes,
        truncated: received.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC),
        fds,
        from,
    })
}

/// Sends one packet without waiting, with `fds` (at most [`MAX_FDS`]) as `SCM_RIGHTS`.
pub fn send(socket: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let iov = [IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    sendmsg::<()>(socket, &iov, cmsgs, flags, None)?;
    Ok(())
}

/// Descriptors taken with [`inherited_socket`], never to be taken twice.
static TAKEN: Mutex<Option<HashSet<RawFd>>> = Mutex::new(None);

/// Takes over descriptor `fd`, inherited from whoever started this process, if it is a socket of
/// `kind` (and made close-on-exec, so that nothing this process starts inherits it). Refused:
/// the standard streams, a descriptor already taken, a closed one, one that is close-on-exec,
/// and any other kind (left alone, and open).
///
/// A descriptor that survived `exec` is not close-on-exec, and every one this process opens is
/// (Rust's standard library and this crate open all theirs so): so one that is not close-on-exec
/// was inherited and is owned by nothing here yet, and taking it makes it close-on-exec, so that
/// it is never taken twice.
pub fn inherited_socket(fd: RawFd, kind: SockType) -> Option<OwnedFd> {
    if fd < 3 {
        return None;
    }
    let mut taken = TAKEN.lock();
    let taken = taken.get_or_insert_with(HashSet::new);
    if taken.contains(&fd) {
        return None;
    }
    // SAFETY: only looked at while it stays open: the descriptors a process inherits are owned
    // by nothing in it until taken, and this one was not (checked above). A closed one fails
    // the look, harmlessly.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD).ok()?;
    if nix::fcntl::FdFlag::from_bits_truncate(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC) {
        // Opened by this process (or taken already): somebody here owns it.
        return None;
    }
    match nix::sys::socket::getsockopt(&borrowed, nix::sys::socket::sockopt::SockType) {
        Ok(found) if found == kind => {}
        _ => return None,
    }
    taken.insert(fd);
    // SAFETY: an inherited descriptor (it survived exec: not close-on-exec), open and of the
    // kind expected (checked above), which nothing in this process owns: taken once (recorded
    // above, and made close-on-exec below).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    Some(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inherited_socket_is_taken_once_and_only_of_its_kind() {
        use nix::sys::socket::{AddressFamily, SockFlag, socketpair};
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::empty()).unwrap();
        let raw = a.as_raw_fd();
        assert!(inherited_socket(raw, SockType::Stream).is_none(), "another kind");
        // Handed to the function as if inherited: ours no longer.
        let _a = std::mem::ManuallyDrop::new(a);
        let taken = inherited_socket(raw, SockType::SeqPacket).expect("a seqpacket socket");
        assert!(inherited_socket(raw, SockType::SeqPacket).is_none(), "not twice");
        assert!(inherited_socket(1, SockType::SeqPacket).is_none());
        let (ours, _peer) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
        assert!(
            inherited_socket(ours.as_raw_fd(), SockType::SeqPacket).is_none(),
            "close-on-exec: opened here, and owned"
        );
        send(b.as_raw_fd(), b"hi", &[]).unwrap();
        let mut buf = [0u8; 8];
        let received = recv(taken.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..received.len], received.truncated), (&b"hi"[..], false));
    }
}
