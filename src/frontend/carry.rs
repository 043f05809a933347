//! A reader's side of the carry (see [`crate::journal::carry`]): what it holds, its decoder's
//! saved state and the input it decoded and has not handled, as the part the journal keeps, and
//! back. Errors are rendered when left, into the bytes they send back, so that the next process
//! needs no renderer of this one's. Pure.

use std::collections::VecDeque;

use bytes::Bytes;

use super::client::Input;
use crate::chat::{ChatError, Event};
use crate::journal::{Held, Part};

/// The part a reader leaves: `decoder`, its decoder's saved state, and `items`, what it decoded
/// and has not yet handled.
pub fn part(decoder: Vec<u8>, items: impl IntoIterator<Item = Input>, render: &dyn Fn(&Event) -> Bytes) -> Part {
    let held = items
        .into_iter()
        .filter_map(|item| {
            Some(match item {
                Input::Line(line) => Held::Line(line),
                Input::TooLong => Held::Reply(render(&Event::Error(ChatError::LineTooLong)).to_vec()),
                Input::Refuse(error) => Held::Reply(render(&Event::Error(error)).to_vec()),
                Input::Reply(bytes) => Held::Reply(bytes.to_vec()),
                Input::Pong(bytes) => Held::Pong(bytes.to_vec()),
                Input::Close(last) => Held::Close(last.map(|b| b.to_vec())),
                Input::Nothing => return None,
            })
        })
        .collect();
    Part { decoder, held }
}

/// The items a reader left, to handle before reading on.
pub fn items(held: Vec<Held>) -> VecDeque<Input> {
    held.into_iter()
        .map(|held| match held {
            Held::Line(line) => Input::Line(line),
            Held::Reply(bytes) => Input::Reply(Bytes::from(bytes)),
            Held::Pong(bytes) => Input::Pong(Bytes::from(bytes)),
            Held::Close(last) => Input::Close(last.map(Bytes::from)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(event: &Event) -> Bytes {
        Bytes::from(event.plain())
    }

    #[test]
    fn what_a_reader_leaves_comes_back_with_its_errors_rendered() {
        let items = [
            Input::Line("msgall hi".into()),
            Input::Nothing,
            Input::TooLong,
            Input::Refuse(ChatError::ServerBusy),
            Input::Reply(Bytes::from_static(b"\xff\xfc\x01")),
            Input::Pong(Bytes::from_static(b"\x8a\x00")),
            Input::Close(None),
            Input::Close(Some(Bytes::from_static(b"\x88\x00"))),
        ];
        let part = part(b"state".to_vec(), items, &render);
        assert_eq!(part.decoder, b"state");
        let rendered = |error| render(&Event::Error(error));
        assert_eq!(
            Vec::from(super::items(part.held)),
            [
                Input::Line("msgall hi".into()),
                Input::Reply(rendered(ChatError::LineTooLong)),
                Input::Reply(rendered(ChatError::ServerBusy)),
                Input::Reply(Bytes::from_static(b"\xff\xfc\x01")),
                Input::Pong(Bytes::from_static(b"\x8a\x00")),
                Input::Close(None),
                Input::Close(Some(Bytes::from_static(b"\x88\x00"))),
            ]
        );
    }
}
