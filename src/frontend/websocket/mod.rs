//! WebSocket framing (RFC 6455), server side, pure: client bytes in, messages out, and the frames
//! the server sends. Frame headers are read and written by tungstenite's frame codec; this adds
//! what a chat session needs around it, streaming, so that a client costs at most `max_line`
//! bytes of buffer whatever it sends:
//! - a text message up to `max_line` bytes is a line; a longer one (up to the message cap) is
//!   skipped as it arrives and reported once as too long; past the cap the connection fails
//!   (1009), as do a protocol violation (1002) and a text that is not UTF-8 (1007);
//! - fragments are joined, control frames may come between them;
//! - a ping is answered by a pong (the session queues only the latest), a close by a close.
//!
//! The server's own frames are rendered whole, once per event, so that a message to a thousand
//! clients is framed once and written as shared bytes, as on telnet.
//!
//! On a planned hand-over a decoder's state is left to the next process of its server
//! (`saved.rs`).

mod saved;

use std::io::Cursor;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Close codes this server sends (RFC 6455 §7.4.1).
pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_DATA: u16 = 1007;
pub const TOO_BIG: u16 = 1009;
/// The server is restarting; the client may reconnect (RFC 6455 registry).
pub const SERVICE_RESTART: u16 = 1012;

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// Longest control frame payload.
const MAX_CONTROL: usize = 125;

/// What a client's bytes produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete text message of at most `max_line` bytes.
    Text(String),
    /// A text message over `max_line` bytes (and within the cap): skipped.
    TooLong,
    /// A binary message: skipped.
    Binary,
    Ping(Bytes),
    Pong,
    /// The client closed the connection.
    Close,
    /// The connection must fail: close with this code and reason.
    Fail(u16, &'static str),
}

/// The frame being read (saved as it is: see [`saved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Frame {
    #[serde(with = "saved::opcode")]
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes still to come.
    left: u64,
    /// Payload bytes read so far (the mask rotates with it).
    read: u64,
}

/// The data message being assembled from its fragments (saved as it is: see [`saved`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Message {
    text: bool,
    /// Payload bytes so far, over all fragments.
    len: u64,
    /// Over `max_line`: the rest is skipped.
    too_long: bool,
}

/// The input side of one WebSocket connection.
#[derive(Debug)]
pub struct Decoder {
    max_line: usize,
    max_message: u64,
    header: [u8; MAX_HEADER],
    header_len: usize,
    frame: Option<Frame>,
    message: Option<Message>,
    /// The text of the current message (at most `max_line` bytes).
    data: Vec<u8>,
    /// The payload of the current (or last) control frame.
    control: Vec<u8>,
    /// It failed or closed: the rest of the input is ignored.
    failed: bool,
}

impl Decoder {
    /// Whether part of a frame or of a fragmented message waits for the rest.
    pub fn partial(&self) -> bool {
        self.header_len > 0 || self.frame.is_some() || self.message.is_some()
    }

    /// Lines up to `max_line` bytes; a message past `max_message` fails the connection.
    pub fn new(max_line: usize, max_message: usize) -> Self {
        Self {
            max_line,
            max_message: max_message as u64,
            header: [0; MAX_HEADER],
            header_len: 0,
            frame: None,
            message: None,
            data: Vec::new(),
            control: Vec::new(),
            failed: false,
        }
    }

    /// Its `max_line` and `max_message`.
    pub fn limits(&self) -> (usize, usize) {
        (self.max_line, self.max_message as usize)
    }

    /// Decodes from the front of `input` up to the next item and returns it, leaving the rest in
    /// `input`; `None` once `input` is used up. After a [`Item::Fail`] or [`Item::Close`] the
    /// rest of the input is ignored.
    pub fn next(&mut self, input: &mut &[u8]) -> Option<Item> {
        while !self.failed && !input.is_empty() {
            let item = match self.frame {
                None => self.header(input),
                Some(_) => self.payload(input),
            };
            if let Some(item) = item {
                if matches!(item, Item::Fail(..) | Item::Close) {
                    self.failed = true;
                    self.data = Vec::new();
                }
                return Some(item);
            }
        }
        *input = &[];
        None
    }

    fn fail(&mut self, code: u16, reason: &'static str) -> Option<Item> {
        Some(Item::Fail(code, reason))
    }

    /// Gathers a header; returns an item only for a frame with an empty payload or a failure.
    fn header(&mut self, input: &mut &[u8]) -> Option<Item> {
        loop {
            let wanted = full_header_len(&self.header[..self.header_len]);
            if self.header_len == wanted {
                break;
            }
            let (&byte, rest) = input.split_first()?;
            self.header[self.header_len] = byte;
            self.header_len += 1;
            *input = rest;
        }
        let parsed = FrameHeader::parse(&mut Cursor::new(&self.header[..self.header_len]));
        self.header_len = 0;
        let (header, len) = match parsed {
            Ok(Some(parsed)) => parsed,
            Ok(None) => unreachable!("the whole header was gathered"),
            Err(_) => return self.fail(PROTOCOL_ERROR, "reserved opcode"),
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return self.fail(PROTOCOL_ERROR, "reserved bits set without an extension");
        }
        let Some(mask) = header.mask else {
            return self.fail(PROTOCOL_ERROR, "client frames must be masked");
        };
        match header.opcode {
            OpCode::Control(_) => {
                if !header.is_final || len > MAX_CONTROL as u64 {
                    return self.fail(PROTOCOL_ERROR, "fragmented or oversized control frame");
                }
                self.control.clear();
            }
            OpCode::Data(Data::Continue) => {
                let Some(message) = &self.message else {
                    return self.fail(PROTOCOL_ERROR, "continuation without a message");
                };
                if message.len + len > self.max_message {
                    return self.fail(TOO_BIG, "message too big");
                }
            }
            OpCode::Data(data) => {
                if self.message.is_some() {
                    return self.fail(PROTOCOL_ERROR, "new message inside a fragmented one");
                }
                if len > self.max_message {
                    return self.fail(TOO_BIG, "message too big");
                }
                self.message = Some(Message {
                    text: data == Data::Text,
                    ..Message::default()
                });
            }
        }
        self.frame = Some(Frame {
            opcode: header.opcode,
            fin: header.is_final,
            mask,
            left: len,
            read: 0,
        });
        if len == 0 { self.end_frame() } else { None }
    }

    /// Takes payload bytes of the current frame; returns an item when the frame completes one.
    fn payload(&mut self, input: &mut &[u8]) -> Option<Item> {
        let frame = self.frame.as_mut().expect("in a frame");
        let take = input.len().min(usize::try_from(frame.left).unwrap_or(usize::MAX));
        let (chunk, rest) = input.split_at(take);
        *input = rest;
        let offset = frame.read;
        frame.read += take as u64;
        frame.left -= take as u64;
        let mask = frame.mask;
        let unmask = |dst: &mut Vec<u8>| {
            let start = dst.len();
            dst.extend_from_slice(chunk);
            for (i, byte) in dst[start..].iter_mut().enumerate() {
                *byte ^= mask[(offset as usize + i) & 3];
            }
        };
        match frame.opcode {
            OpCode::Control(_) => unmask(&mut self.control),
            OpCode::Data(_) => {
                let message = self.message.as_mut().expect("a data frame belongs to a message");
                message.len += take as u64;
                if message.text && !message.too_long {
                    if message.len > self.max_line as u64 {
                        message.too_long = true;
                        self.data = Vec::new();
                    } else {
                        unmask(&mut self.data);
                    }
                }
            }
        }
        if self.frame.as_ref().is_some_and(|f| f.left == 0) {
            self.end_frame()
        } else {
            None
        }
    }

    fn end_frame(&mut self) -> Option<Item> {
        let frame = self.frame.take().expect("in a frame");
        match frame.opcode {
            OpCode::Control(Control::Ping) => Some(Item::Ping(Bytes::from(std::mem::take(&mut self.control)))),
            OpCode::Control(Control::Pong) => Some(Item::Pong),
            OpCode::Control(_) => Some(Item::Close),
            OpCode::Data(_) if !frame.fin => None,
            OpCode::Data(_) => {
                let message = self.message.take().expect("a data frame belongs to a message");
                let data = std::mem::take(&mut self.data);
                Some(if !message.text {
                    Item::Binary
                } else if message.too_long {
                    Item::TooLong
                } else {
                    match String::from_utf8(data) {
                        Ok(text) => Item::Text(text),
                        Err(_) => Item::Fail(INVALID_DATA, "text is not UTF-8"),
                    }
                })
            }
        }
    }
}

/// How long the header that begins with `start` is, as far as `start` tells: its first two bytes
/// say whether an extended length and a mask follow.
fn full_header_len(start: &[u8]) -> usize {
    let [_, second, ..] = *start else {
        return 2;
    };
    let extra = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + extra + if second & 0x80 != 0 { 4 } else { 0 }
}

/// A whole unmasked frame from the server.
fn frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = BytesMut::with_capacity(header.len(len) + payload.len());
    let mut writer = (&mut out).writer();
    header.format(len, &mut writer).expect("writing to memory");
    out.put_slice(payload);
    out.freeze()
}

/// A text frame.
pub fn text(payload: &str) -> Bytes {
    frame(OpCode::Data(Data::Text), payload.as_bytes())
}

pub fn ping(payload: &[u8]) -> Bytes {
    frame(OpCode::Control(Control::Ping), payload)
}

pub fn pong(payload: &[u8]) -> Bytes {
    frame(OpCode::Control(Control::Pong), payload)
}

/// A close frame with a code and a short reason.
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(MAX_CONTROL - 2)]);
    frame(OpCode::Control(Control::Close), &payload)
}

#[cfg(test)]
mod tests;
