//! The position file: a small shared-memory file (a memfd) that the supervisor creates for each
//! server and hands to each of its processes, so that it outlives any one of them, crash
//! included. A process stores in it, as it goes, the kernel frame it handled last, and for each
//! client (by slot) how far its output is written, whether some of its input is still on its way,
//! and its login (so that the next process can name it in its hello even to a kernel that
//! restarted meanwhile and knows nobody).
//!
//! Every word is an atomic stored as things happen (no system call); the next process reads a
//! slot once, as it adopts that client ([`Slot::left`]), and decides with
//! [`recover`](super::recover) what that means. Layout, in native-endian u64 words, slot `i`
//! starting at word `8 + 24i`:
//!
//! ```text
//! 0       magic       marks a file laid out like this
//! 1       epoch       the kernel process the position belongs to (0: none yet)
//! 2       position    the number of the last kernel frame handled
//! 8+24i   output      the number of the last frame whose message to it was all written,
//!                     | PENDING while some of its output is not yet written
//! 9+24i   input       PARTIAL | UNACKED | HELD (see below)
//! 10+24i  line        the number of the frame that carried its latest line to the kernel;
//!                     0 while that line waits for one
//! 11+24i  writing     the last frame a write under way would complete; 0: none
//! 12+24i  write end   where that write would end, in bytes written to the socket ever
//! 13+24i  reading     1 + the bytes read from the socket ever, before a read under way; 0: none
//! 14+24i  login       its login's order (`Login::seq`)
//! 15+24i  name length the length in bytes of its name; 0: not logged in
//! 16+24i  name        16 words, the name's UTF-8 bytes (at most 128: 32 characters)
//! ```

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::chat::Login;
use crate::sys::shared::SharedWords;

const MAGIC: u64 = u64::from_be_bytes(*b"CHATPOS1");
const HEADER_WORDS: usize = 8;
const SLOT_WORDS: usize = 24;
/// Words of a slot that hold a name.
const NAME_WORDS: usize = 16;
/// Output of a client not yet all written (the frames after its number may not have reached it).
const PENDING: u64 = 1 << 63;
/// The client had sent part of a line, which died with the process.
const PARTIAL: u64 = 1;
/// The client had lines sent to the kernel and not acknowledged, which may have died with it.
const UNACKED: u64 = 2;
/// Input read from the client was not yet all handed to the kernel: it died with the process.
const HELD: u64 = 4;

/// Where each word of a slot is, from the slot's first word.
const OUTPUT: usize = 0;
const INPUT: usize = 1;
const LINE: usize = 2;
const WRITING: usize = 3;
const WRITE_END: usize = 4;
const READING: usize = 5;
const LOGIN: usize = 6;
const NAME_LEN: usize = 7;
const NAME: usize = 8;

/// A mapped position file.
pub struct PositionFile {
    words: SharedWords,
    slots: u32,
}

impl PositionFile {
    /// A new position file with room for `slots` clients, for the supervisor to hand to each
    /// process of server `name`.
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
        let file = Self {
            words,
            slots: ((count - HEADER_WORDS) / SLOT_WORDS) as u32,
        };
        let magic = file.word(0);
        if magic.load(Ordering::Acquire) != MAGIC {
            magic.store(MAGIC, Ordering::Release);
        }
        Ok(Arc::new(file))
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

    /// Kernel frame `seq` of kernel process `epoch` is handled.
    pub fn set_position(&self, epoch: u64, seq: u64) {
        self.word(1).store(epoch, Ordering::Relaxed);
        self.word(2).store(seq, Ordering::Release);
    }
}

/// One client's slot in a position file: where its process records how far the client got.
#[derive(Clone)]
pub struct Slot {
    file: Arc<PositionFile>,
    index: u32,
}

/// What a slot says the process before left of its client (see the layout above).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Left {
    /// The last frame whose message to it was all written.
    pub written: u64,
    /// Some of its output was not yet written.
    pub pending: bool,
    /// A write under way would have completed this frame (0: none was under way) …
    pub writing: u64,
    /// … and ended at this many bytes ever written to the socket.
    pub write_end: u64,
    /// A read was under way, this many bytes having been read from the socket ever before it.
    pub reading: Option<u64>,
    /// Input read and not yet all handed to the kernel.
    pub held: bool,
    /// The input read ended within a line (or frame).
    pub partial: bool,
    /// Lines were sent to the kernel and not yet acknowledged …
    pub unacked: bool,
    /// … the latest of them carried by this frame (0: it had none yet).
    pub line: u64,
    pub login: Option<Login>,
}

impl Slot {
    /// Slot `index` of `file`, if it has one.
    pub fn new(file: &Arc<PositionFile>, index: u32) -> Option<Self> {
        (index < file.slots()).then(|| Self {
            file: file.clone(),
            index,
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        self.file.word(HEADER_WORDS + SLOT_WORDS * self.index as usize + at)
    }

    /// Its output is written up to frame `written`; `pending`: more waits.
    pub fn output(&self, written: u64, pending: bool) {
        let word = if pending { written | PENDING } else { written };
        self.word(OUTPUT).store(word, Ordering::Relaxed);
    }

    /// A write is under way that would complete frame `frame` (0: none is) and end at `end`
    /// bytes written to the socket ever.
    pub fn writing(&self, frame: u64, end: u64) {
        self.word(WRITE_END).store(end, Ordering::Relaxed);
        self.word(WRITING).store(frame, Ordering::Relaxed);
    }

    /// A read is under way, `before` bytes having been read from the socket ever (`None`: no
    /// read is under way).
    pub fn reading(&self, before: Option<u64>) {
        self.word(READING).store(before.map_or(0, |b| b + 1), Ordering::Relaxed);
    }

    /// Whether input read from the client is not yet all handed to the kernel (`held`: it would
    /// be lost) and whether it may end within a line (`partial`: the rest of that line is to be
    /// skipped).
    pub fn input(&self, held: bool, partial: bool) {
        self.flag(HELD, held);
        self.flag(PARTIAL, partial);
    }

    /// Whether lines of the client are sent to the kernel and not yet acknowledged.
    pub fn unacked(&self, unacked: bool) {
        self.flag(UNACKED, unacked);
    }

    /// The frame that carried the client's latest line (0: that line waits for one).
    pub fn line(&self, frame: u64) {
        self.word(LINE).store(frame, Ordering::Relaxed);
    }

    fn flag(&self, flag: u64, on: bool) {
        let word = self.word(INPUT);
        if on {
            word.fetch_or(flag, Ordering::Relaxed);
        } else {
            word.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    /// The client's login (`None`: logged out). A name too long to record (it cannot be: names
    /// are at most 32 characters) is recorded as no login.
    pub fn login(&self, login: Option<&Login>) {
        // The length goes last: the next process takes the name only once it is whole.
        self.word(NAME_LEN).store(0, Ordering::Release);
        let Some(login) = login.filter(|l| l.name.len() <= 8 * NAME_WORDS) else {
            return;
        };
        self.word(LOGIN).store(login.seq, Ordering::Relaxed);
        for (i, chunk) in login.name.as_bytes().chunks(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            self.word(NAME + i).store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        self.word(NAME_LEN).store(login.name.len() as u64, Ordering::Release);
    }

    fn recorded_login(&self) -> Option<Login> {
        let len = self.word(NAME_LEN).load(Ordering::Acquire) as usize;
        if len == 0 || len > 8 * NAME_WORDS {
            return None;
        }
        let mut name: Vec<u8> = (0..NAME_WORDS)
            .flat_map(|i| self.word(NAME + i).load(Ordering::Relaxed).to_le_bytes())
            .collect();
        name.truncate(len);
        Some(Login {
            name: String::from_utf8(name).ok()?,
            seq: self.word(LOGIN).load(Ordering::Relaxed),
        })
    }

    /// What the process before left here.
    pub fn left(&self) -> Left {
        let output = self.word(OUTPUT).load(Ordering::Relaxed);
        let input = self.word(INPUT).load(Ordering::Relaxed);
        Left {
            written: output & !PENDING,
            pending: output & PENDING != 0,
            writing: self.word(WRITING).load(Ordering::Relaxed),
            write_end: self.word(WRITE_END).load(Ordering::Relaxed),
            reading: self.word(READING).load(Ordering::Relaxed).checked_sub(1),
            held: input & HELD != 0,
            partial: input & PARTIAL != 0,
            unacked: input & UNACKED != 0,
            line: self.word(LINE).load(Ordering::Relaxed),
            login: self.recorded_login(),
        }
    }

    /// A fresh start: everything of its client written up to frame `written`, nothing in hand,
    /// logged in as `login`.
    pub fn reset(&self, written: u64, login: Option<&Login>) {
        self.output(written, false);
        self.word(INPUT).store(0, Ordering::Relaxed);
        self.line(0);
        self.writing(0, 0);
        self.reading(None);
        self.login(login);
    }
}

#[cfg(test)]
mod tests;
