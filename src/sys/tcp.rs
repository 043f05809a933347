//! What a TCP socket knows of the bytes ever written to it and read from it, by any process.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// How many bytes were ever written to and read from the accepted TCP socket `socket`, by any
/// process: written, those the peer acknowledged (`tcpi_bytes_acked`) and those still queued
/// (`SIOCOUTQ`); read, those received (`tcpi_bytes_received`) less those waiting to be read
/// (`SIOCINQ`).
pub fn byte_counts(socket: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let info = tcp_info(socket)?;
    let written = info.tcpi_bytes_acked + queue(socket, libc::TIOCOUTQ)?;
    let read = info.tcpi_bytes_received.saturating_sub(queue(socket, libc::FIONREAD)?);
    Ok((written, read))
}

/// The socket's `TCP_INFO` (Linux 4.1 and later fill the byte counts).
fn tcp_info(socket: BorrowedFd<'_>) -> io::Result<libc::tcp_info> {
    // SAFETY: `tcp_info` is plain integers, for which all zeroes is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and the length describe `info`, which the call writes at most `len`
    // bytes of.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received) + 8;
    if (len as usize) < needed {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a tcp_info without byte counts",
        ));
    }
    Ok(info)
}

/// Bytes in a socket queue: `TIOCOUTQ` (not yet acknowledged) or `FIONREAD` (not yet read).
fn queue(socket: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: both requests write one int to the pointer they are given, which points at one.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request, &mut queued) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(queued.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_socket_knows_how_many_bytes_were_written_to_it_and_read_from_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!(byte_counts(server.as_fd()).unwrap(), (0, 0));
        let mut copy = server.try_clone().unwrap();
        copy.write_all(&[7u8; 1000]).unwrap();
        drop(copy);
        assert_eq!(
            byte_counts(server.as_fd()).unwrap().0,
            1000,
            "counted across descriptors"
        );
        // (On the connecting side the count includes the SYN: clients are always accepted here.)
        client.write_all(b"hello\n").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while tcp_info(server.as_fd()).unwrap().tcpi_bytes_received < 6 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert_eq!(byte_counts(server.as_fd()).unwrap().1, 0, "received, not yet read");
        let mut three = [0u8; 3];
        server.read_exact(&mut three).unwrap();
        assert_eq!(byte_counts(server.as_fd()).unwrap().1, 3);
    }
}
