//! The *carry*: what a frontend's clients leave to the next process of their server on a planned
//! hand-over (`restart NAME`, a reload that changes the server), so that it takes each one over
//! exactly where this one stopped: the state of its decoder (half a line, half a WebSocket frame
//! or a fragmented message) and the input it had decoded and not yet handled (lines waiting under
//! its throttle, or for it to read its output).
//!
//! Written once, on the hand-over, into a memfd the supervisor passes to the next process; a
//! crash leaves none (the position file then says what died). The format is postcard after a
//! version (see [`crate::versioned`]): a carry of another version is refused whole, and the next
//! process goes by the position file as after a crash.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use crate::chat::SessionId;

/// The version of the layout below (see [`crate::versioned`]); a carry of another is not read.
const VERSION: u8 = 1;

/// An item a reader had decoded and not yet handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Held {
    /// A command line for the kernel.
    Line(String),
    /// Bytes to send back (an error rendered already, a refused telnet option).
    Reply(Vec<u8>),
    /// A WebSocket pong to send back.
    Pong(Vec<u8>),
    /// Send these bytes, if any, and close.
    Close(Option<Vec<u8>>),
}

/// What one client's reader left: its decoder's saved state, and what it had not yet handled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub decoder: Vec<u8>,
    pub held: Vec<Held>,
}

/// Every client's part, as the bytes the next process reads.
pub fn encode(parts: &HashMap<SessionId, Part>) -> Vec<u8> {
    crate::versioned::encode(VERSION, parts, 0)
}

/// The parts [`encode`] wrote, by session; `None` if `bytes` are not a carry of this version.
pub fn decode(bytes: &[u8]) -> Option<HashMap<SessionId, Part>> {
    crate::versioned::decode(VERSION, bytes).ok()
}

/// A memfd holding every client's part, for the supervisor to pass on.
pub fn write(parts: &HashMap<SessionId, Part>) -> io::Result<OwnedFd> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use std::io::Write;
    let fd = memfd_create("carry", MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&encode(parts))?;
    Ok(file.into())
}

/// What [`write`] wrote (read from its start, whatever its offset).
pub fn read(fd: &OwnedFd) -> io::Result<HashMap<SessionId, Part>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(fd.try_clone()?);
    let mut bytes = vec![0; file.metadata()?.len() as usize];
    file.read_exact_at(&mut bytes, 0)?;
    decode(&bytes).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a carry of this version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> HashMap<SessionId, Part> {
        let mut parts: HashMap<SessionId, Part> = (1..=300)
            .map(|id| {
                let part = Part {
                    decoder: vec![id as u8; id as usize % 7],
                    held: vec![Held::Line(format!("msgall {id}"))],
                };
                (id, part)
            })
            .collect();
        parts.insert(
            u64::MAX,
            Part {
                decoder: Vec::new(),
                held: vec![
                    Held::Reply(b"\xff\xfc\x01".to_vec()),
                    Held::Pong(b"\x8a\x00".to_vec()),
                    Held::Close(None),
                    Held::Close(Some(b"\x88\x00".to_vec())),
                ],
            },
        );
        parts
    }

    #[test]
    fn every_part_comes_back_as_it_was_left() {
        let parts = parts();
        assert_eq!(decode(&encode(&parts)), Some(parts.clone()));
        let fd = write(&parts).unwrap();
        assert_eq!(read(&fd).unwrap(), parts, "through a memfd");
        assert_eq!(decode(&encode(&HashMap::new())), Some(HashMap::new()));
    }

    #[test]
    fn what_is_not_a_carry_of_this_version_is_refused() {
        let good = encode(&parts());
        for cut in [0, 1, 2, good.len() / 2, good.len() - 1] {
            assert_eq!(decode(&good[..cut]), None, "cut at {cut}");
        }
        let other = crate::versioned::encode(VERSION + 1, &parts(), 0);
        assert_eq!(decode(&other), None, "another version");
        let mut bad_text = vec![VERSION];
        bad_text.extend_from_slice(&[1, 7, 0, 1, 0, 1, 0xff]);
        assert_eq!(decode(&bad_text), None, "a line that is not UTF-8");
    }
}
