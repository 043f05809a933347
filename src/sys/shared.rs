//! A file mapped into memory as shared words, which every process that maps it sees at once: how
//! a process leaves what it did to the next one, crash included (the position file).

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// A whole file mapped shared, as atomic 64-bit words (any bytes past the last whole word are
/// not part of it).
pub struct SharedWords {
    start: NonNull<AtomicU64>,
    /// Bytes mapped.
    len: usize,
}

// SAFETY: the mapping is only ever accessed through atomics (`words`), and lives as long as this
// value, wherever it moves.
unsafe impl Send for SharedWords {}
// SAFETY: as above: shared access is through atomics only.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Maps all of `fd` (a file of at least one word); `fd` may be closed afterwards.
    pub fn map(fd: &OwnedFd) -> io::Result<Self> {
        let len = nix::sys::stat::fstat(fd)?.st_size as usize;
        let size = NonZeroUsize::new(len).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "an empty file"))?;
        // SAFETY: a new shared mapping of a file we hold, at an address of the system's choosing
        // (nothing else of ours is there). It is read only as atomics (`words`: u64-aligned,
        // since mappings are page-aligned), and unmapped on drop.
        let start = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(Self {
            start: start.cast(),
            len,
        })
    }

    /// The mapped words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `len / 8` whole words lie in the mapping, which is aligned and valid for as
        // long as `self`, and which Rust code only touches through these atomics.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len / 8) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of this length; nothing borrows it past `self`.
        let _ = unsafe { munmap(self.start.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_a_file_share_its_words() {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create("test", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, 8 * 3 + 5).unwrap();
        let (a, b) = (SharedWords::map(&fd).unwrap(), SharedWords::map(&fd).unwrap());
        assert_eq!(a.words().len(), 3);
        a.words()[2].store(42, Ordering::Release);
        assert_eq!(b.words()[2].load(Ordering::Acquire), 42);
        let empty = memfd_create("empty", MFdFlags::MFD_CLOEXEC).unwrap();
        assert!(SharedWords::map(&empty).is_err());
    }
}
