//! A WebSocket decoder's state as it leaves it for the next process of its server on a planned
//! hand-over (see [`carry`](crate::frontend::carry)): [`VERSION`], then a [`Saved`] in postcard.
//! What is read back is held to the invariants the decoder keeps, so that no bytes, another
//! process's or garbage, can make it misread a client or panic.

use serde::{Deserialize, Serialize};
use tungstenite::protocol::frame::coding::OpCode;

use super::{Decoder, Frame, MAX_CONTROL, Message, full_header_len};

/// The layout of a saved decoder ([`Saved`], [`Frame`] and [`Message`] in postcard): a process
/// refuses a state of another version rather than misread it. Bump it with any change to them.
pub(super) const VERSION: u8 = 1;

/// What [`Decoder::save`] leaves the next process: the decoder but its limits, which are the next
/// process's own. The byte strings are written in one copy each (serde would write a `[u8]` a
/// byte at a time; postcard reads both the same).
#[derive(Serialize, Deserialize)]
struct Saved<'a> {
    /// A header half read.
    #[serde(serialize_with = "crate::versioned::byte_string")]
    header: &'a [u8],
    frame: Option<Frame>,
    message: Option<Message>,
    /// The current message's text so far.
    #[serde(serialize_with = "crate::versioned::byte_string")]
    data: &'a [u8],
    /// The current control frame's payload so far.
    #[serde(serialize_with = "crate::versioned::byte_string")]
    control: &'a [u8],
    /// It failed or closed: it ignores the rest.
    failed: bool,
}

impl Decoder {
    /// Its whole state, for the next process of this server to take over on a planned restart
    /// ([`restore`](Self::restore)): a header half read, the frame under way (its mask and how
    /// much of it is left), the message being assembled from its fragments and its text so far.
    pub fn save(&self) -> Vec<u8> {
        let saved = Saved {
            header: &self.header[..self.header_len],
            frame: self.frame,
            message: self.message,
            data: &self.data,
            control: &self.control,
            failed: self.failed,
        };
        // The version, a frame and a message at their longest, the byte strings with their lengths.
        let capacity = 64 + self.header_len + self.data.len() + self.control.len();
        crate::versioned::encode(VERSION, &saved, capacity)
    }

    /// The decoder [`save`](Self::save) described, with these limits; `None` if `saved` is not
    /// such a state (another version's, cut short or garbled), or does not fit the limits (the
    /// server's `max_line` shrank meanwhile).
    pub fn restore(max_line: usize, max_message: usize, saved: &[u8]) -> Option<Self> {
        let saved: Saved = crate::versioned::decode(VERSION, saved).ok()?;
        if !saved.fits(max_line, max_message as u64) {
            return None;
        }
        let mut decoder = Self::new(max_line, max_message);
        decoder.header[..saved.header.len()].copy_from_slice(saved.header);
        decoder.header_len = saved.header.len();
        decoder.frame = saved.frame;
        decoder.message = saved.message;
        decoder.data = saved.data.to_vec();
        decoder.control = saved.control.to_vec();
        decoder.failed = saved.failed;
        Some(decoder)
    }
}

impl Saved<'_> {
    /// Whether a decoder with these limits could be in this state.
    fn fits(&self, max_line: usize, max_message: u64) -> bool {
        // A header is gathered between frames, until it is whole.
        let header =
            self.header.is_empty() || (self.frame.is_none() && self.header.len() < full_header_len(self.header));
        let frame = self.frame.is_none_or(|frame| match frame.opcode {
            OpCode::Control(_) => frame
                .read
                .checked_add(frame.left)
                .is_some_and(|n| n <= MAX_CONTROL as u64),
            // Its message counts what it read of it, and stays within the cap with what is left.
            OpCode::Data(_) => self.message.is_some_and(|message| {
                frame.read <= message.len && message.len.checked_add(frame.left).is_some_and(|n| n <= max_message)
            }),
        });
        let message = self.message.is_none_or(|message| message.len <= max_message);
        header && frame && message && self.data.len() <= max_line && self.control.len() <= MAX_CONTROL
    }
}

/// tungstenite's opcode as its number; only those a frame under way can have are read back (the
/// reserved ones fail a connection at their header).
pub(super) mod opcode {
    use serde::de::{Error, Unexpected};
    use serde::{Deserialize, Deserializer, Serializer};
    use tungstenite::protocol::frame::coding::OpCode;

    pub fn serialize<S: Serializer>(opcode: &OpCode, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(u8::from(*opcode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OpCode, D::Error> {
        match u8::deserialize(deserializer)? {
            number @ (0..=2 | 8..=10) => Ok(OpCode::from(number)),
            number => Err(D::Error::invalid_value(
                Unexpected::Unsigned(number.into()),
                &"the opcode of a data or control frame",
            )),
        }
    }
}
