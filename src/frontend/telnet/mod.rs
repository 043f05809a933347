//! Telnet input framing (PROTOCOL.md §1), pure: bytes in, lines and negotiation answers out.
//!
//! IAC sequences are removed from the stream; every option the client asks for is refused (DO is
//! answered WONT, WILL is answered DONT), so a real telnet client never waits on us. Lines end at
//! `\n` with an optional `\r` before it, or at `\r\0` (telnet's bare CR). At most `max_line` bytes
//! of an unfinished line are ever held: past that the line is reported too long at once and the
//! rest of it is skipped.

use serde::{Deserialize, Serialize};

const SE: u8 = 240;
const SB: u8 = 250;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
const IAC: u8 = 255;
/// A line buffer that grew past this (a long line) is given back once the line is done, so an
/// idle client holds no buffer to speak of.
const KEEP_CAPACITY: usize = 256;

/// What a chunk of client bytes produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete line, without its ending, invalid UTF-8 replaced by U+FFFD.
    Line(String),
    /// The current line passed `max_line` bytes; it is dropped up to its `\n`.
    TooLong,
    /// Bytes to send back to the client (a refused option).
    Answer([u8; 3]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: the next byte is the option.
    Option(u8),
    /// Inside IAC SB … IAC SE.
    Sub,
    /// After IAC inside a subnegotiation.
    SubCommand,
}

/// The input side of one telnet connection.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoder {
    max_line: usize,
    line: Vec<u8>,
    /// A `\r` seen but not yet known to end the line.
    cr: bool,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
    phase: Phase,
}

impl Decoder {
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            line: Vec::new(),
            cr: false,
            skipping: false,
            phase: Phase::Data,
        }
    }

    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Whether part of a line (or of a command) waits for the rest.
    pub fn partial(&self) -> bool {
        !self.line.is_empty() || self.phase != Phase::Data
    }

    /// Drops everything up to the next end of line: its start died with an earlier process.
    pub fn skip_line(&mut self) {
        self.skipping = true;
    }

    /// Decodes from the front of `input` up to the next item and returns it, leaving the rest in
    /// `input`; `None` once `input` is used up (an unfinished line stays in the decoder).
    pub fn next(&mut self, input: &mut &[u8]) -> Option<Item> {
        let mut found = None;
        let mut used = 0;
        for &byte in input.iter() {
            used += 1;
            self.phase = match (self.phase, byte) {
                (Phase::Data, IAC) => Phase::Command,
                (Phase::Data, byte) => {
                    found = self.data(byte);
                    Phase::Data
                }
                (Phase::Command, IAC) => {
                    // IAC IAC is a literal 255 data byte.
                    found = self.data(IAC);
                    Phase::Data
                }
                (Phase::Command, WILL | WONT | DO | DONT) => Phase::Option(byte),
                (Phase::Command, SB) => Phase::Sub,
                (Phase::Command, _) => Phase::Data, // NOP, GA, AYT…: no data, nothing to answer
                (Phase::Option(verb), option) => {
                    found = match verb {
                        DO => Some(Item::Answer([IAC, WONT, option])),
                        WILL => Some(Item::Answer([IAC, DONT, option])),
                        _ => None, // WONT/DONT agree with what we already do
                    };
                    Phase::Data
                }
                (Phase::Sub, IAC) => Phase::SubCommand,
                (Phase::Sub, _) => Phase::Sub,
                (Phase::SubCommand, SE) => Phase::Data,
                (Phase::SubCommand, _) => Phase::Sub,
            };
            if found.is_some() {
                break;
            }
        }
        *input = &input[used..];
        found
    }

    /// Feeds bytes as they arrived; `item` is called for each line, overflow and answer.
    pub fn feed(&mut self, mut bytes: &[u8], item: &mut impl FnMut(Item)) {
        while let Some(found) = self.next(&mut bytes) {
            item(found);
        }
    }

    fn data(&mut self, byte: u8) -> Option<Item> {
        // CR NUL is the telnet spelling of a bare CR (RFC 854), and what Debian's telnet sends for
        // the Enter key of piped input: it ends the line like CR LF.
        if byte == b'\n' || (byte == 0 && self.cr) {
            self.cr = false;
            if std::mem::take(&mut self.skipping) {
                return None;
            }
            let line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            if self.line.capacity() > KEEP_CAPACITY {
                self.line = Vec::new();
            }
            return Some(Item::Line(line));
        }
        if self.skipping {
            return None;
        }
        let mut found = None;
        if std::mem::take(&mut self.cr) {
            found = self.push(b'\r');
        }
        if byte == b'\r' {
            self.cr = true;
        } else if found.is_none() {
            found = self.push(byte);
        } else {
            // Too long already: the rest of the line is skipped.
        }
        found
    }

    fn push(&mut self, byte: u8) -> Option<Item> {
        if self.skipping {
            return None;
        }
        if self.line.len() == self.max_line {
            self.line = Vec::new();
            self.skipping = true;
            return Some(Item::TooLong);
        }
        self.line.push(byte);
        None
    }

    /// Bytes held for the unfinished line (never more than `max_line`).
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// Its whole state, for the next process of this server to take over on a planned restart
    /// ([`restore`](Self::restore)): where it is in a command, a pending `\r`, whether it skips
    /// the rest of a line, and the unfinished line: a version byte, then the state in postcard.
    pub fn save(&self) -> Vec<u8> {
        let saved = Saved {
            phase: self.phase,
            cr: self.cr,
            skipping: self.skipping,
            line: &self.line,
        };
        // The version, three bytes of state, the line's length (a varint) and the line.
        crate::versioned::encode(VERSION, &saved, 8 + self.line.len())
    }

    /// The decoder [`save`](Self::save) described; `None` if `saved` is not such a state (another
    /// version's, cut short or garbled), or its line does not fit `max_line` (the server's
    /// `max_line` shrank meanwhile).
    pub fn restore(max_line: usize, saved: &[u8]) -> Option<Self> {
        let saved: Saved = crate::versioned::decode(VERSION, saved).ok()?;
        let command = match saved.phase {
            Phase::Option(verb) => matches!(verb, WILL | WONT | DO | DONT),
            _ => true,
        };
        (command && saved.line.len() <= max_line).then(|| Self {
            max_line,
            line: saved.line.to_vec(),
            cr: saved.cr,
            skipping: saved.skipping,
            phase: saved.phase,
        })
    }
}

/// The layout of a saved decoder ([`Saved`] and [`Phase`] in postcard): a process refuses a state
/// of another version rather than misread it. Bump it with any change to either.
const VERSION: u8 = 1;

/// What [`Decoder::save`] leaves the next process: the decoder but its `max_line`, which is the
/// next process's own.
#[derive(Serialize, Deserialize)]
struct Saved<'a> {
    phase: Phase,
    cr: bool,
    skipping: bool,
    /// Copied at once (serde would write a `[u8]` a byte at a time).
    #[serde(serialize_with = "crate::versioned::byte_string")]
    line: &'a [u8],
}

#[cfg(test)]
mod tests;
