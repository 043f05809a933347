//! What a child inherits, arranged between `fork` and `exec` (`Command::pre_exec`), where only
//! async-signal-safe calls are allowed: no allocation, no lock.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::signal::Signal;

/// Copies are made at or above this number, above every descriptor a child is given, so that
/// placing one cannot overwrite another before it is placed.
const ABOVE_PLACES: i32 = 16;

/// The child is killed (SIGKILL) when the process that started it dies, even by SIGKILL; if that
/// process is already gone when the child starts, the child is not started.
///
/// The signal is tied to the thread that forks: start children from the main thread (the
/// supervisor runs a single-threaded runtime).
pub fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec this only makes async-signal-safe calls (prctl, getppid)
    // and allocates nothing: both errors are OS error numbers, which an `io::Error` holds inline.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                // The supervisor died before the child started.
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// The child inherits a copy of `fd` as descriptor `place` (not close-on-exec). The copy this
/// process makes for it is closed when `command` is dropped; `fd` itself stays ours.
pub fn pass_fd(command: &mut Command, fd: impl AsFd, place: i32) -> io::Result<()> {
    let raw = fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(ABOVE_PLACES))?;
    // SAFETY: fcntl just made this descriptor for us, and nothing else owns it.
    let copy = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: runs between fork and exec; it only calls dup2, which is async-signal-safe, and
    // allocates nothing. The closure owns `copy`, so the descriptor it borrows stays open until
    // the command (and the closure) is dropped, after the spawn.
    unsafe {
        command.pre_exec(move || {
            let from = std::os::fd::BorrowedFd::borrow_raw(copy.as_raw_fd());
            // dup2 clears close-on-exec on the new descriptor; it is the child's to keep.
            let placed = nix::unistd::dup2_raw(from, place)?;
            std::mem::forget(placed);
            Ok(())
        });
    }
    Ok(())
}
