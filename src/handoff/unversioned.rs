//! The packet layout of the builds before packets had a version: a tag letter, then big-endian
//! fields. A supervisor of such a build keeps running when a new binary is installed under it
//! and `restart --all` moves its children to that binary; so a frontend reads this layout too,
//! and answers in it the supervisor that speaks it (see [`Layout`](super::Layout)). A versioned
//! packet starts with its version, never a letter.
//!
//! ```text
//! 'P' (session:u64 slot:u32)*   park         'R' session:u64*   release
//! 'A' (session:u64 slot:u32)*   adopt        'M' position file  'C' carry
//! 'E' end of adoption                        'H' hand over
//! ```

use super::{Message, SessionSlot};
use crate::chat::SessionId;

/// Whether `byte` begins a packet of this layout.
pub(super) fn is_tag(byte: u8) -> bool {
    b"PRAMECH".contains(&byte)
}

/// The packet's bytes in this layout.
pub(super) fn encode(message: &Message) -> Vec<u8> {
    let sessions = |tag: u8, list: &[SessionSlot]| {
        let mut out = Vec::with_capacity(1 + 12 * list.len());
        out.push(tag);
        for (id, slot) in list {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&slot.to_be_bytes());
        }
        out
    };
    match message {
        Message::Park(list) => sessions(b'P', list),
        Message::Adopt(list) => sessions(b'A', list),
        Message::Release(ids) => {
            let mut out = Vec::with_capacity(1 + 8 * ids.len());
            out.push(b'R');
            for id in ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
            out
        }
        Message::PositionFile => vec![b'M'],
        Message::Adopted => vec![b'E'],
        Message::HandOver => vec![b'H'],
        Message::Carry => vec![b'C'],
    }
}

/// The message a packet of this layout, `tag` then `rest`, carries; why not, if it is none.
pub(super) fn decode(tag: u8, rest: &[u8]) -> Result<Message, &'static str> {
    let ids = |size: usize| {
        rest.len()
            .is_multiple_of(size)
            .then(|| rest.chunks_exact(size))
            .ok_or("a list that is not a whole number of entries")
    };
    let id = |bytes: &[u8]| SessionId::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let sessions = || -> Result<Vec<SessionSlot>, &'static str> {
        let slot = |bytes: &[u8]| u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        Ok(ids(12)?.map(|c| (id(c), slot(c))).collect())
    };
    let nothing = |message: Message| rest.is_empty().then_some(message).ok_or("bytes after a bare tag");
    match tag {
        b'P' => Ok(Message::Park(sessions()?)),
        b'A' => Ok(Message::Adopt(sessions()?)),
        b'R' => Ok(Message::Release(ids(8)?.map(id).collect())),
        b'M' => nothing(Message::PositionFile),
        b'E' => nothing(Message::Adopted),
        b'H' => nothing(Message::HandOver),
        b'C' => nothing(Message::Carry),
        _ => Err("no such tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_comes_back_as_it_went_and_as_the_earlier_build_wrote_it() {
        for message in [
            Message::Park(vec![(1, 0), (2, crate::handoff::NO_SLOT), (u64::MAX, 7)]),
            Message::Release(vec![7, 300]),
            Message::Release(vec![]),
            Message::Adopt((1..=253).map(|id| (id, id as u32)).collect()),
            Message::PositionFile,
            Message::Adopted,
            Message::HandOver,
            Message::Carry,
        ] {
            let bytes = encode(&message);
            assert!(is_tag(bytes[0]));
            assert_eq!(decode(bytes[0], &bytes[1..]), Ok(message));
        }
        // Bytes as the earlier build laid them out.
        assert_eq!(encode(&Message::Park(vec![(1, 2)])), b"P\0\0\0\0\0\0\0\x01\0\0\0\x02");
        assert_eq!(encode(&Message::Release(vec![258])), b"R\0\0\0\0\0\0\x01\x02");
    }

    #[test]
    fn a_malformed_packet_is_refused() {
        assert!(decode(b'P', b"12345678").is_err(), "ragged");
        assert!(decode(b'R', b"1234567").is_err(), "ragged");
        assert!(decode(b'E', b"x").is_err(), "trailing");
        assert!(decode(b'Z', b"").is_err(), "no such tag");
        assert!(!is_tag(super::super::VERSION), "a versioned packet is told apart");
    }
}
