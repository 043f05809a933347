//! What a frontend's clients leave to the next process of their server on a planned hand-over
//! (`restart NAME`, a reload that changes the server), so that it takes each one over exactly
//! where this one stopped: the state of its decoder (half a line, half a WebSocket frame or a
//! fragmented message) and the input it had decoded and not yet handled (lines waiting for their
//! turn under its throttle, or for it to read its output). Pure: bytes in, bytes out.
//!
//! Each client's *part* is encoded as its reader leaves it (see
//! [`Sessions::keep`](super::session::Sessions::keep)); on the hand-over every part is written
//! into one memfd, which the supervisor passes to the next process. A crash leaves no parts: the
//! position file then says what died (see [`crate::handoff::state`]).
//!
//! Layout, big-endian: the file is records `session:u64 len:u32 part`; a part is
//! `decoder_len:u32 decoder item*`, an item `tag:u8 len:u32 bytes`, with the tags `L` a line,
//! `R` bytes to send back, `P` a pong, `C` a close after these bytes.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::client::Input;
use crate::chat::{ChatError, Event, SessionId};

/// What one client's reader left: its decoder's state and the input it had not yet handled.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub decoder: Vec<u8>,
    pub items: VecDeque<Input>,
}

/// One client's part: `decoder` (its decoder's saved state) and `items`, what it had decoded and
/// not yet handled. Errors are rendered now, with `render`, into the bytes they send back.
pub fn part(decoder: &[u8], items: impl IntoIterator<Item = Input>, render: &dyn Fn(&Event) -> Bytes) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + decoder.len());
    put(&mut out, decoder);
    for item in items {
        let (tag, bytes) = match item {
            Input::Line(line) => (b'L', Bytes::from(line)),
            Input::TooLong => (b'R', render(&Event::Error(ChatError::LineTooLong))),
            Input::Refuse(error) => (b'R', render(&Event::Error(error))),
            Input::Reply(bytes) => (b'R', bytes),
            Input::Pong(bytes) => (b'P', bytes),
            Input::Close(last) => (b'C', last.unwrap_or_default()),
            Input::Nothing => continue,
        };
        out.push(tag);
        put(&mut out, &bytes);
    }
    out
}

/// The part [`part`] encoded; `None` if `bytes` is not one.
pub fn parse_part(mut bytes: &[u8]) -> Option<Carried> {
    let decoder = take(&mut bytes)?.to_vec();
    let mut items = VecDeque::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        let payload = take(&mut bytes)?;
        items.push_back(match tag {
            b'L' => Input::Line(String::from_utf8(payload.to_vec()).ok()?),
            b'R' => Input::Reply(Bytes::copy_from_slice(payload)),
            b'P' => Input::Pong(Bytes::copy_from_slice(payload)),
            b'C' => Input::Close((!payload.is_empty()).then(|| Bytes::copy_from_slice(payload))),
            _ => return None,
        });
    }
    Some(Carried { decoder, items })
}

/// Every client's part, as the file the next process reads.
pub fn file(parts: &HashMap<SessionId, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.values().map(|p| 12 + p.len()).sum());
    for (id, part) in parts {
        out.extend_from_slice(&id.to_be_bytes());
        put(&mut out, part);
    }
    out
}

/// The parts [`file`] wrote, by session; `None` if `bytes` is not such a file.
pub fn parse_file(mut bytes: &[u8]) -> Option<HashMap<SessionId, Vec<u8>>> {
    let mut parts = HashMap::new();
    while !bytes.is_empty() {
        let (id, rest) = bytes.split_first_chunk::<8>()?;
        bytes = rest;
        parts.insert(u64::from_be_bytes(*id), take(&mut bytes)?.to_vec());
    }
    Some(parts)
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("a part under 4 GiB").to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Takes a length-prefixed field off the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (field, rest) = rest.split_at_checked(u32::from_be_bytes(*len) as usize)?;
    *bytes = rest;
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(event: &Event) -> Bytes {
        Bytes::from(event.plain())
    }

    #[test]
    fn a_part_comes_back_as_it_was_left() {
        let items = [
            Input::Line("msgall hi".into()),
            Input::Nothing,
            Input::TooLong,
            Input::Reply(Bytes::from_static(b"\xff\xfc\x01")),
            Input::Pong(Bytes::from_static(b"\x8a\x00")),
            Input::Close(None),
            Input::Close(Some(Bytes::from_static(b"\x88\x00"))),
        ];
        let carried = parse_part(&part(b"state", items, &render)).unwrap();
        assert_eq!(carried.decoder, b"state");
        let too_long = render(&Event::Error(ChatError::LineTooLong));
        assert_eq!(
            Vec::from(carried.items),
            [
                Input::Line("msgall hi".into()),
                Input::Reply(too_long),
                Input::Reply(Bytes::from_static(b"\xff\xfc\x01")),
                Input::Pong(Bytes::from_static(b"\x8a\x00")),
                Input::Close(None),
                Input::Close(Some(Bytes::from_static(b"\x88\x00"))),
            ]
        );
        assert_eq!(parse_part(&part(b"", [], &render)), Some(Carried::default()));
    }

    #[test]
    fn a_file_holds_every_part_by_session() {
        let parts: HashMap<SessionId, Vec<u8>> = (1..=300).map(|id| (id, vec![id as u8; id as usize % 7])).collect();
        assert_eq!(parse_file(&file(&parts)), Some(parts));
        assert_eq!(parse_file(&[]), Some(HashMap::new()));
    }

    #[test]
    fn what_is_not_a_part_or_a_file_is_refused() {
        let good = part(b"s", [Input::Line("x".into())], &render);
        for cut in 0..good.len() {
            if cut != 4 + 1 {
                // (Cut right after the decoder it is a part without items.)
                assert_eq!(parse_part(&good[..cut]), None, "cut at {cut}");
            }
        }
        let mut unknown = part(b"", [], &render);
        unknown.extend_from_slice(b"Z\0\0\0\0");
        assert_eq!(parse_part(&unknown), None);
        let mut bad_text = part(b"", [], &render);
        bad_text.extend_from_slice(b"L\0\0\0\x01\xff");
        assert_eq!(parse_part(&bad_text), None, "a line that is not UTF-8");
        let file = file(&HashMap::from([(7, good)]));
        assert_eq!(parse_file(&file[..file.len() - 1]), None);
    }
}
