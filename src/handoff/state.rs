//! Where a frontend's process leaves off, kept in a small shared memory file (a memfd) that the
//! supervisor creates for each server and hands to each of its processes, so that it outlives any
//! one of them, crash included: the kernel frame it handled last, and for each client (by slot)
//! how far its output was written, whether some of its input was still on its way, and its login
//! (so that the next process can name it in its hello even to a kernel that restarted meanwhile
//! and knows nobody).
//!
//! Every word is an atomic the process stores as it goes (no system call); its next process
//! reads them once, before serving. Layout, in native-endian u64 words:
//!
//! ```text
//! 0  magic        marks a file laid out like this
//! 1  epoch        the kernel process the position belongs to (0: none yet)
//! 2  position     the number of the last kernel frame handled
//! 8+6i   output of slot i    the number of the last frame whose line for it was all written,
//!                            | PENDING while some of its output is not yet written
//! 9+6i   input of slot i     PARTIAL | UNACKED | HELD (see below)
//! 10+6i  line of slot i      the number of the frame that carried its latest line to the
//!                            kernel; 0 while that line waits for one
//! 11+6i  writing of slot i   the last frame a write under way would complete; 0: none
//! 12+6i  write end of slot i where that write would end, in bytes written to the socket ever
//! 13+6i  reading of slot i   1 + the bytes read from the socket ever, before a read under way;
//!                            0: none
//! 14+6i  login of slot i     its login's order (`Login::seq`)
//! 15+6i  name length         the length in bytes of its name; 0: not logged in
//! 16+6i  name                16 words, the name's UTF-8 bytes (at most 128: 32 characters)
//! ```
//! (with 24 words a slot: read `6i` above as `24i`).
//!
//! A process that dies inside a write to a client leaves the next one unsure how much of it
//! reached the socket, and one that dies just after a read, before it could record what it read,
//! leaves it unsure whether input died with it; the socket itself knows how many bytes were ever
//! written to it and read from it ([`byte_counts`](crate::sys::tcp::byte_counts)), which settles
//! both.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::shared::SharedWords;

const MAGIC: u64 = u64::from_be_bytes(*b"CHATPOS1");
const HEADER_WORDS: usize = 8;
const SLOT_WORDS: usize = 24;
/// Words of a slot that hold a name.
const NAME_WORDS: usize = 16;
/// Output of a client's session not yet written (the frames after its number may not have
/// reached it).
pub const PENDING: u64 = 1 << 63;
/// The client had sent part of a line, which died with the process.
pub const PARTIAL: u64 = 1;
/// The client had lines sent to the kernel and not acknowledged, which may have died with it.
pub const UNACKED: u64 = 2;
/// Input read from the client was not yet all handed to the kernel: it died with the process.
pub const HELD: u64 = 4;

/// A mapped position file.
pub struct State {
    words: SharedWords,
    slots: u32,
}

impl State {
    /// A new position file with room for `slots` clients.
    pub fn create(name: &str, slots: u32) -> io::Result<OwnedFd> {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)?;
        let len = (HEADER_WORDS + SLOT_WORDS * slots as usize) * 8;
        nix::unistd::ftruncate(&fd, len as i64)?;
        Ok(fd)
    }

    /// Maps a position file; the descriptor may be closed afterwards.
    pub fn map(fd: &OwnedFd) -> io::Result<Arc<Self>> {
        let words = SharedWords::map(fd)?;
        let count = words.words().len();
        if count < HEADER_WORDS {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a position file too small"));
        }
        let state = Self {
            words,
            slots: ((count - HEADER_WORDS) / SLOT_WORDS) as u32,
        };
        let magic = state.word(0);
        if magic.load(Ordering::Acquire) != MAGIC {
            magic.store(MAGIC, Ordering::Release);
        }
        Ok(Arc::new(state))
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        &self.words.words()[i]
    }

    /// How many client slots it has.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The last kernel frame handled: its kernel's epoch and number.
    pub fn position(&self) -> Option<(u64, u64)> {
        let epoch = self.word(1).load(Ordering::Acquire);
        (epoch != 0).then(|| (epoch, self.word(2).load(Ordering::Acquire)))
    }

    pub fn set_position(&self, epoch: u64, seq: u64) {
        self.word(1).store(epoch, Ordering::Relaxed);
        self.word(2).store(seq, Ordering::Release);
    }

    /// Slot `i`'s output word.
    pub fn output(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.word(HEADER_WORDS + SLOT_WORDS * slot as usize)
    }

    /// Slot `i`'s input word.
    pub fn input(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.word(HEADER_WORDS + SLOT_WORDS * slot as usize + 1)
    }

    /// Slot `i`'s line word.
    pub fn line(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.word(HEADER_WORDS + SLOT_WORDS * slot as usize + 2)
    }

    /// Slot `i`'s writing word.
    pub fn writing(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.word(HEADER_WORDS + SLOT_WORDS * slot as usize + 3)
    }

    /// Slot `i`'s write-end word.
    pub fn write_end(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.word(HEADER_WORDS + SLOT_WORDS * slot as usize + 4)
    }

    /// Slot `i`'s reading word.
    pub fn reading(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.word(HEADER_WORDS + SLOT_WORDS * slot as usize + 5)
    }

    /// Slot `i`'s login words: its order, its name's length, then its name.
    fn login_words(&self, slot: u32) -> impl Iterator<Item = &AtomicU64> {
        assert!(slot < self.slots);
        let first = HEADER_WORDS + SLOT_WORDS * slot as usize + 6;
        (first..first + 2 + NAME_WORDS).map(|i| self.word(i))
    }
}

/// One client's slot in a position file.
#[derive(Clone)]
pub struct Slot {
    state: Arc<State>,
    index: u32,
}

impl Slot {
    /// Slot `index` of `state`, if it has one.
    pub fn new(state: &Arc<State>, index: u32) -> Option<Self> {
        (index < state.slots()).then(|| Self {
            state: state.clone(),
            index,
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// Records how far the client's output is written, and whether more waits.
    pub fn set_output(&self, written: u64, pending: bool) {
        let word = if pending { written | PENDING } else { written };
        self.state.output(self.index).store(word, Ordering::Relaxed);
    }

    /// Sets or clears an input flag ([`PARTIAL`], [`UNACKED`]).
    pub fn set_input(&self, flag: u64, on: bool) {
        let word = self.state.input(self.index);
        if on {
            word.fetch_or(flag, Ordering::Relaxed);
        } else {
            word.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    /// Records the last frame the write under way would complete (0: no write under way) and
    /// where, in bytes ever written to the socket, that write would end.
    pub fn set_writing(&self, frame: u64, end: u64) {
        self.state.write_end(self.index).store(end, Ordering::Relaxed);
        self.state.writing(self.index).store(frame, Ordering::Relaxed);
    }

    /// The write under way when the previous process died: the last frame it would have
    /// completed (0: none) and where it would have ended.
    pub fn was_writing(&self) -> (u64, u64) {
        (
            self.state.writing(self.index).load(Ordering::Relaxed),
            self.state.write_end(self.index).load(Ordering::Relaxed),
        )
    }

    /// Records that a read is under way, `before` bytes having been read from the socket ever
    /// (`None`: no read under way).
    pub fn set_reading(&self, before: Option<u64>) {
        self.state
            .reading(self.index)
            .store(before.map_or(0, |b| b + 1), Ordering::Relaxed);
    }

    /// The read under way when the previous process died: the bytes read ever before it.
    pub fn was_reading(&self) -> Option<u64> {
        self.state.reading(self.index).load(Ordering::Relaxed).checked_sub(1)
    }

    /// Records the number of the frame that carried the client's latest line (0: it waits for
    /// one).
    pub fn set_line(&self, frame: u64) {
        self.state.line(self.index).store(frame, Ordering::Relaxed);
    }

    /// What the process before left here: (output word, input word, line word).
    pub fn read(&self) -> (u64, u64, u64) {
        (
            self.state.output(self.index).load(Ordering::Relaxed),
            self.state.input(self.index).load(Ordering::Relaxed),
            self.state.line(self.index).load(Ordering::Relaxed),
        )
    }

    /// A fresh start for a new client.
    pub fn reset(&self, written: u64) {
        self.set_output(written, false);
        self.state.input(self.index).store(0, Ordering::Relaxed);
        self.set_line(0);
        self.set_writing(0, 0);
        self.set_reading(None);
        self.set_login(None);
    }

    /// Records the client's login (`None`: logged out). A name too long to record (it cannot
    /// be: names are at most 32 characters) is recorded as no login.
    pub fn set_login(&self, login: Option<&crate::chat::Login>) {
        let mut words = self.state.login_words(self.index);
        let (seq, len) = (words.next().expect("a word"), words.next().expect("a word"));
        // The length goes last: the next process takes the name only once it is whole.
        len.store(0, Ordering::Release);
        let Some(login) = login.filter(|l| l.name.len() <= 8 * NAME_WORDS) else {
            return;
        };
        seq.store(login.seq, Ordering::Relaxed);
        for (word, chunk) in words.zip(login.name.as_bytes().chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        len.store(login.name.len() as u64, Ordering::Release);
    }

    /// The login the process before recorded, if any.
    pub fn login(&self) -> Option<crate::chat::Login> {
        let mut words = self.state.login_words(self.index);
        let (seq, len) = (words.next().expect("a word"), words.next().expect("a word"));
        let len = len.load(Ordering::Acquire) as usize;
        if len == 0 || len > 8 * NAME_WORDS {
            return None;
        }
        let mut name: Vec<u8> = words.flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes()).collect();
        name.truncate(len);
        Some(crate::chat::Login {
            name: String::from_utf8(name).ok()?,
            seq: seq.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_one_process_stores_the_next_one_reads() {
        let fd = State::create("test", 100).unwrap();
        let first = State::map(&fd).unwrap();
        assert_eq!(first.slots(), 100);
        assert_eq!(first.position(), None);
        first.set_position(7, 42);
        first.output(99).store(41 | PENDING, Ordering::Relaxed);
        first.input(3).store(PARTIAL, Ordering::Relaxed);
        drop(first);
        let next = State::map(&fd).unwrap();
        assert_eq!(next.position(), Some((7, 42)));
        assert_eq!(next.output(99).load(Ordering::Relaxed), 41 | PENDING);
        assert_eq!(next.input(3).load(Ordering::Relaxed), PARTIAL);
        assert_eq!(next.input(4).load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_login_is_recorded_whole_and_forgotten_on_logout_or_reset() {
        use crate::chat::Login;
        let fd = State::create("test", 3).unwrap();
        let state = State::map(&fd).unwrap();
        let slot = Slot::new(&state, 1).unwrap();
        assert_eq!(slot.login(), None);
        for name in ["a", "alice", "𝒜".repeat(32).as_str(), "ünïcödé-name.x_y"] {
            let login = Login {
                name: name.to_string(),
                seq: 42,
            };
            slot.set_login(Some(&login));
            let next = Slot::new(&State::map(&fd).unwrap(), 1).unwrap();
            assert_eq!(next.login(), Some(login), "{name}");
        }
        assert_eq!(
            Slot::new(&state, 0).unwrap().login(),
            None,
            "its neighbours keep theirs"
        );
        slot.set_login(None);
        assert_eq!(slot.login(), None);
        slot.set_login(Some(&Login {
            name: "bob".into(),
            seq: 1,
        }));
        slot.reset(0);
        assert_eq!(slot.login(), None);
    }

    #[test]
    #[should_panic]
    fn a_slot_past_the_end_is_refused() {
        let fd = State::create("test", 2).unwrap();
        State::map(&fd).unwrap().output(2);
    }
}
