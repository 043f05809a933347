//! The kernel ⇄ frontend wire protocol: message types and their byte encoding. Pure: no I/O.
//!
//! It runs over any reliable byte stream (a Unix socket today); nothing here assumes more.
//!
//! # Frame format
//! Every integer is big-endian.
//!
//! ```text
//! frame    = length:u32 body                 length of body, 1..=MAX_FRAME
//! string   = length:u32 utf8-bytes
//! login    = 0:u8 | 1:u8 name:string seq:u64
//!
//! frontend → kernel
//!   0x01 Hello    "CHAT" version:u16 frontend:string instance:u64 first:u64 count:u32 (session:u64 login)*
//!   0x02 Open     session:u64
//!   0x03 Line     session:u64 line:string
//!   0x04 Closed   session:u64
//!   0x05 Census                                      as a first frame instead of a hello: how many
//!                                                    users each frontend has (for `status`)
//!   0x06 Heartbeat                                   sent after a second without other frames
//! kernel → frontend
//!   0x81 Welcome  "CHAT" version:u16
//!   0x82 Deliver  origin count:u32 session:u64* event   one frame per frontend per event;
//!                 count 0xFFFFFFFF (no ids): every session of the frontend that is logged in
//!   0x83 Named    session:u64 login                  the session logged in or out
//!   0x84 Close    session:u64                        close it once the frames before are sent
//!   0x85 Census   count:u32 (frontend:string users:u64)*
//!   0x86 Ack      seq:u64                            every frame up to seq has been applied
//!   0x87 Heartbeat                                   sent after a second without other frames
//!
//! origin   = instance:u64 seq:u64                    the input that caused it; instance 0: none
//! event    = 1 Login name | 2 Logout name | 3 Private time from to text | 4 Public time from text
//!          | 5 WhoAmI raw:u8 name | 6 UserList raw:u8 count:u32 name* | 7 Help | 8 Error code:u8 [name]
//! ```
//!
//! Heartbeats are not numbered. Each side sends one after [`HEARTBEAT`] without sending anything
//! else, and takes a peer silent for [`HEARTBEAT_TIMEOUT`] for hung: a stopped kernel or frontend
//! is found in seconds, even though its socket stays open.
//!
//! A hello must be a frontend's first frame and the welcome the kernel's (an observer may send a
//! census request instead of a hello: it gets one census frame and the connection closes); the version is
//! [`VERSION`] and the kernel refuses any other. Decoding checks every length against the bytes
//! actually present before allocating, so a hostile frame costs at most its own size.
//!
//! # Losing nothing when the kernel restarts
//! The frames a frontend sends after its hello are numbered implicitly: the first is `first`, each
//! next one adds 1. The kernel acknowledges them; the frontend keeps every unacknowledged frame
//! and, after reconnecting (to a new kernel, possibly), says hello with `first` set to the oldest
//! of them and sends them again. A frame may so be applied twice, once by each kernel: events
//! carry the `origin` (frontend instance and frame number) of the input that caused them, and a
//! frontend drops an event whose origin it has already seen, so each is shown once.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::chat::{ChatError, Event, Login, SessionId, SyntaxError};

/// The protocol version a hello and a welcome carry.
pub const VERSION: u16 = 2;
/// Idle time after which either side sends a heartbeat.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// Silence after which either side takes the other for hung.
pub const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Bytes a hello and a welcome start with, so a stray client is told apart from a frontend.
pub const MAGIC: &[u8; 4] = b"CHAT";
/// Largest frame body either side accepts: room for a hello listing 100,000 sessions.
pub const MAX_FRAME: usize = 16 << 20;

/// Frontend → kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The first frame: who the frontend is, and every live session (with its login, if any) so
    /// that a restarted kernel can rebuild its state.
    Hello {
        version: u16,
        frontend: String,
        /// Tells this process apart from earlier ones of the same name (their frame numbers
        /// started over).
        instance: u64,
        /// The number of the first frame after this hello.
        first: u64,
        sessions: Vec<(SessionId, Option<Login>)>,
    },
    Open {
        session: SessionId,
    },
    Line {
        session: SessionId,
        line: String,
    },
    Closed {
        session: SessionId,
    },
    /// Asks for [`Downstream::Census`].
    Census,
    /// Still here; not numbered.
    Heartbeat,
}

/// Kernel → frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downstream {
    Welcome {
        version: u16,
    },
    Deliver {
        to: To,
        origin: Option<Origin>,
        event: Event,
    },
    Named {
        session: SessionId,
        login: Option<Login>,
    },
    Close {
        session: SessionId,
    },
    /// Logged-in users per attached frontend, by name.
    Census {
        users: Vec<(String, u64)>,
    },
    /// Every frame of this frontend numbered up to `seq` has been applied.
    Ack {
        seq: u64,
    },
    /// Still here.
    Heartbeat,
}

/// Who of a frontend's sessions an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    /// Every session logged in at this point of the stream (as the frontend's `Named` frames
    /// tell): a broadcast costs a few bytes, whatever the number of users.
    LoggedIn,
    Only(Vec<SessionId>),
}

/// Marks [`To::LoggedIn`] in place of a count.
const LOGGED_IN: u32 = u32::MAX;

/// Which input caused an event: a frontend instance and the number of its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub instance: u64,
    pub seq: u64,
}

/// Why a frame body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame ends early")]
    Truncated,
    #[error("{0} unexpected bytes after the frame's content")]
    Trailing(usize),
    #[error("unknown {what} tag {tag:#04x}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("string is not valid UTF-8")]
    BadUtf8,
    #[error("hello or welcome without the CHAT magic")]
    BadMagic,
}

const HELLO: u8 = 0x01;
const OPEN: u8 = 0x02;
const LINE: u8 = 0x03;
const CLOSED: u8 = 0x04;
const CENSUS: u8 = 0x05;
const HEARTBEAT_UP: u8 = 0x06;
const WELCOME: u8 = 0x81;
const DELIVER: u8 = 0x82;
const NAMED: u8 = 0x83;
const CLOSE: u8 = 0x84;
const CENSUS_REPLY: u8 = 0x85;
const ACK: u8 = 0x86;
const HEARTBEAT_DOWN: u8 = 0x87;

impl Upstream {
    /// Appends this message as one whole frame (length included).
    pub fn encode(&self, dst: &mut BytesMut) {
        frame(dst, |dst| match self {
            Upstream::Hello {
                version,
                frontend,
                instance,
                first,
                sessions,
            } => {
                dst.put_u8(HELLO);
                dst.put_slice(MAGIC);
                dst.put_u16(*version);
                put_str(dst, frontend);
                dst.put_u64(*instance);
                dst.put_u64(*first);
                put_len(dst, sessions.len());
                for (session, login) in sessions {
                    dst.put_u64(*session);
                    put_login(dst, login.as_ref());
                }
            }
            Upstream::Open { session } => {
                dst.put_u8(OPEN);
                dst.put_u64(*session);
            }
            Upstream::Line { session, line } => {
                dst.put_u8(LINE);
                dst.put_u64(*session);
                put_str(dst, line);
            }
            Upstream::Closed { session } => {
                dst.put_u8(CLOSED);
                dst.put_u64(*session);
            }
            Upstream::Census => dst.put_u8(CENSUS),
            Upstream::Heartbeat => dst.put_u8(HEARTBEAT_UP),
        });
    }

    /// Decodes one frame body (without its length).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(body);
        let message = match r.u8()? {
            HELLO => {
                r.magic()?;
                let version = r.u16()?;
                let frontend = r.string()?;
                let instance = r.u64()?;
                let first = r.u64()?;
                // A session is at least 9 bytes: its id and a login flag.
                let count = r.count(9)?;
                let mut sessions = Vec::with_capacity(count);
                for _ in 0..count {
                    sessions.push((r.u64()?, r.login()?));
                }
                Upstream::Hello {
                    version,
                    frontend,
                    instance,
                    first,
                    sessions,
                }
            }
            OPEN => Upstream::Open { session: r.u64()? },
            LINE => Upstream::Line {
                session: r.u64()?,
                line: r.string()?,
            },
            CLOSED => Upstream::Closed { session: r.u64()? },
            CENSUS => Upstream::Census,
            HEARTBEAT_UP => Upstream::Heartbeat,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "frontend frame",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(message)
    }
}

impl Downstream {
    /// Appends this message as one whole frame (length included).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Downstream::Deliver { to, origin, event } => {
                let only = match to {
                    To::LoggedIn => None,
                    To::Only(sessions) => Some(sessions.as_slice()),
                };
                encode_deliver(dst, only, *origin, &encode_event(event))
            }
            other => frame(dst, |dst| match other {
                Downstream::Welcome { version } => {
                    dst.put_u8(WELCOME);
                    dst.put_slice(MAGIC);
                    dst.put_u16(*version);
                }
                Downstream::Named { session, login } => {
                    dst.put_u8(NAMED);
                    dst.put_u64(*session);
                    put_login(dst, login.as_ref());
                }
                Downstream::Close { session } => {
                    dst.put_u8(CLOSE);
                    dst.put_u64(*session);
                }
                Downstream::Census { users } => {
                    dst.put_u8(CENSUS_REPLY);
                    put_len(dst, users.len());
                    for (frontend, count) in users {
                        put_str(dst, frontend);
                        dst.put_u64(*count);
                    }
                }
                Downstream::Ack { seq } => {
                    dst.put_u8(ACK);
                    dst.put_u64(*seq);
                }
                Downstream::Heartbeat => dst.put_u8(HEARTBEAT_DOWN),
                Downstream::Deliver { .. } => unreachable!("handled above"),
            }),
        }
    }

    /// Decodes one frame body (without its length).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(body);
        let message = match r.u8()? {
            WELCOME => {
                r.magic()?;
                Downstream::Welcome { version: r.u16()? }
            }
            DELIVER => {
                let origin = match (r.u64()?, r.u64()?) {
                    (0, _) => None,
                    (instance, seq) => Some(Origin { instance, seq }),
                };
                let to = if r.0.get(..4) == Some(&LOGGED_IN.to_be_bytes()) {
                    r.u32()?;
                    To::LoggedIn
                } else {
                    let count = r.count(8)?;
                    let mut to = Vec::with_capacity(count);
                    for _ in 0..count {
                        to.push(r.u64()?);
                    }
                    To::Only(to)
                };
                Downstream::Deliver {
                    to,
                    origin,
                    event: r.event()?,
                }
            }
            NAMED => Downstream::Named {
                session: r.u64()?,
                login: r.login()?,
            },
            CLOSE => Downstream::Close { session: r.u64()? },
            CENSUS_REPLY => {
                let count = r.count(12)?;
                let mut users = Vec::with_capacity(count);
                for _ in 0..count {
                    users.push((r.string()?, r.u64()?));
                }
                Downstream::Census { users }
            }
            ACK => Downstream::Ack { seq: r.u64()? },
            HEARTBEAT_DOWN => Downstream::Heartbeat,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "kernel frame",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(message)
    }
}

/// Encodes an event once, to be framed for each frontend by [`encode_deliver`].
pub fn encode_event(event: &Event) -> Bytes {
    let mut dst = BytesMut::new();
    match event {
        Event::Login { name } => {
            dst.put_u8(1);
            put_str(&mut dst, name);
        }
        Event::Logout { name } => {
            dst.put_u8(2);
            put_str(&mut dst, name);
        }
        Event::Private { time, from, to, text } => {
            dst.put_u8(3);
            for s in [time, from, to, text] {
                put_str(&mut dst, s);
            }
        }
        Event::Public { time, from, text } => {
            dst.put_u8(4);
            for s in [time, from, text] {
                put_str(&mut dst, s);
            }
        }
        Event::WhoAmI { name, raw } => {
            dst.put_u8(5);
            dst.put_u8(u8::from(*raw));
            put_str(&mut dst, name);
        }
        Event::UserList { names, raw } => {
            dst.put_u8(6);
            dst.put_u8(u8::from(*raw));
            put_len(&mut dst, names.len());
            for name in names {
                put_str(&mut dst, name);
            }
        }
        Event::Help => dst.put_u8(7),
        Event::Greeting { motd } => {
            dst.put_u8(9);
            put_str(&mut dst, motd);
        }
        Event::Error(error) => {
            dst.put_u8(8);
            dst.put_u8(error_code(error));
            if let ChatError::NotFound(name) = error {
                put_str(&mut dst, name);
            }
        }
    }
    dst.freeze()
}

/// Appends a Deliver frame for one frontend: its recipients (`None`: every logged-in session),
/// the origin of the event, and the event from [`encode_event`].
pub fn encode_deliver(dst: &mut BytesMut, to: Option<&[SessionId]>, origin: Option<Origin>, event: &[u8]) {
    frame(dst, |dst| {
        dst.put_u8(DELIVER);
        let origin = origin.unwrap_or(Origin { instance: 0, seq: 0 });
        dst.put_u64(origin.instance);
        dst.put_u64(origin.seq);
        match to {
            None => dst.put_u32(LOGGED_IN),
            Some(to) => {
                put_len(dst, to.len());
                for session in to {
                    dst.put_u64(*session);
                }
            }
        }
        dst.put_slice(event);
    });
}

/// Every error an event can carry, by its code on the wire: the one place codes are spelled.
/// `NotFound` is followed by the name that was not found.
const ERRORS: [(u8, ChatError); 14] = [
    (1, ChatError::Syntax(SyntaxError::UnknownCommand)),
    (2, ChatError::Syntax(SyntaxError::RequireUsername)),
    (3, ChatError::Syntax(SyntaxError::OverageInfo)),
    (4, ChatError::Syntax(SyntaxError::EmptyMessage)),
    (5, ChatError::UsernameTaken),
    (6, ChatError::InvalidUsername),
    (7, ChatError::AlreadyLogin),
    (8, ChatError::FirstLogin),
    (9, ChatError::NotFound(String::new())),
    (10, ChatError::LineTooLong),
    (11, ChatError::ServerBusy),
    (12, ChatError::ServerFull),
    (13, ChatError::TooManyConnections),
    (14, ChatError::ServerUnavailable),
];

fn error_code(error: &ChatError) -> u8 {
    let same = |known: &ChatError| match (known, error) {
        (ChatError::NotFound(_), ChatError::NotFound(_)) => true,
        (known, error) => known == error,
    };
    ERRORS
        .iter()
        .find(|(_, known)| same(known))
        .map(|(code, _)| *code)
        .expect("every error has a code")
}

/// Writes a frame whose body `body` appends, then fills in its length.
fn frame(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let at = dst.len();
    dst.put_u32(0);
    body(dst);
    let len = u32::try_from(dst.len() - at - 4).expect("frame under 4 GiB");
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_len(dst: &mut BytesMut, len: usize) {
    dst.put_u32(u32::try_from(len).expect("count under 4 G"));
}

fn put_str(dst: &mut BytesMut, s: &str) {
    put_len(dst, s.len());
    dst.put_slice(s.as_bytes());
}

fn put_login(dst: &mut BytesMut, login: Option<&Login>) {
    match login {
        None => dst.put_u8(0),
        Some(Login { name, seq }) => {
            dst.put_u8(1);
            put_str(dst, name);
            dst.put_u64(*seq);
        }
    }
}

/// A cursor over a frame body that never reads past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::UnknownTag { what: "flag", tag }),
        }
    }

    /// A count of items each at least `min_size` bytes, checked against what is left, so that a
    /// forged count cannot make the decoder allocate more than the frame's own size.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count > self.0.len() / min_size {
            return Err(DecodeError::Truncated);
        }
        Ok(count)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8)
    }

    fn magic(&mut self) -> Result<(), DecodeError> {
        if self.take(MAGIC.len())? == MAGIC {
            Ok(())
        } else {
            Err(DecodeError::BadMagic)
        }
    }

    fn login(&mut self) -> Result<Option<Login>, DecodeError> {
        Ok(if self.bool()? {
            Some(Login {
                name: self.string()?,
                seq: self.u64()?,
            })
        } else {
            None
        })
    }

    fn event(&mut self) -> Result<Event, DecodeError> {
        Ok(match self.u8()? {
            1 => Event::Login { name: self.string()? },
            2 => Event::Logout { name: self.string()? },
            3 => Event::Private {
                time: self.string()?,
                from: self.string()?,
                to: self.string()?,
                text: self.string()?,
            },
            4 => Event::Public {
                time: self.string()?,
                from: self.string()?,
                text: self.string()?,
            },
            5 => {
                let raw = self.bool()?;
                Event::WhoAmI {
                    name: self.string()?,
                    raw,
                }
            }
            6 => {
                let raw = self.bool()?;
                let count = self.count(4)?;
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    names.push(self.string()?);
                }
                Event::UserList { names, raw }
            }
            7 => Event::Help,
            8 => {
                let code = self.u8()?;
                let error = ERRORS
                    .iter()
                    .find(|(known, _)| *known == code)
                    .map(|(_, error)| error.clone())
                    .ok_or(DecodeError::UnknownTag {
                        what: "error",
                        tag: code,
                    })?;
                Event::Error(match error {
                    ChatError::NotFound(_) => ChatError::NotFound(self.string()?),
                    other => other,
                })
            }
            9 => Event::Greeting { motd: self.string()? },
            tag => return Err(DecodeError::UnknownTag { what: "event", tag }),
        })
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// The framing both sides read with: a big-endian u32 length, bodies up to [`MAX_FRAME`].
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::Decoder;

    fn s(x: &str) -> String {
        x.to_string()
    }

    fn all_events() -> Vec<Event> {
        let mut events = vec![
            Event::Login { name: s("bob") },
            Event::Logout { name: s("Юля") },
            Event::Private {
                time: s("12:00:00"),
                from: s("a"),
                to: s("b"),
                text: s("hi  <b>"),
            },
            Event::Public {
                time: s("12:00:01"),
                from: s("a"),
                text: s(""),
            },
            Event::WhoAmI {
                name: s("a"),
                raw: true,
            },
            Event::UserList {
                names: vec![s("a"), s("b")],
                raw: false,
            },
            Event::UserList {
                names: vec![],
                raw: true,
            },
            Event::Help,
            Event::Greeting { motd: s("hello") },
            Event::Error(ChatError::NotFound(s("zed"))),
        ];
        for (code, error) in &ERRORS {
            if !matches!(error, ChatError::NotFound(_)) {
                let body = [8, *code];
                events.push(Reader(&body).event().unwrap());
            }
        }
        events
    }

    #[test]
    fn error_codes_are_distinct_and_cover_every_error() {
        let mut codes: Vec<u8> = ERRORS.iter().map(|(code, _)| *code).collect();
        codes.dedup();
        assert_eq!(codes.len(), ERRORS.len());
        for (code, error) in &ERRORS {
            assert_eq!(error_code(error), *code);
        }
        assert_eq!(
            Reader(&[8, 200]).event(),
            Err(DecodeError::UnknownTag {
                what: "error",
                tag: 200
            })
        );
    }

    /// Splits a buffer of whole frames with the same codec the sockets use.
    fn frames(bytes: &[u8]) -> Vec<BytesMut> {
        let mut buf = BytesMut::from(bytes);
        let mut codec = codec();
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            out.push(frame);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn upstream_round_trips() {
        let messages = [
            Upstream::Hello {
                version: VERSION,
                frontend: s("twisted"),
                instance: 99,
                first: 12,
                sessions: vec![
                    (1, None),
                    (
                        u64::MAX,
                        Some(Login {
                            name: s("bob"),
                            seq: 42,
                        }),
                    ),
                ],
            },
            Upstream::Open { session: 7 },
            Upstream::Line {
                session: 7,
                line: s("msgall héllo"),
            },
            Upstream::Closed { session: 7 },
            Upstream::Census,
            Upstream::Heartbeat,
        ];
        let mut buf = BytesMut::new();
        for m in &messages {
            m.encode(&mut buf);
        }
        let decoded: Vec<_> = frames(&buf).iter().map(|f| Upstream::decode(f).unwrap()).collect();
        assert_eq!(decoded, messages);
    }

    #[test]
    fn downstream_round_trips() {
        let mut messages = vec![
            Downstream::Welcome { version: VERSION },
            Downstream::Named {
                session: 3,
                login: Some(Login { name: s("a"), seq: 1 }),
            },
            Downstream::Named {
                session: 3,
                login: None,
            },
            Downstream::Close { session: 3 },
            Downstream::Census {
                users: vec![(s("web"), 3), (s("twisted"), 0)],
            },
            Downstream::Ack { seq: 77 },
            Downstream::Heartbeat,
        ];
        for (i, event) in all_events().into_iter().enumerate() {
            let origin = (i % 2 == 1).then_some(Origin {
                instance: 5,
                seq: i as u64,
            });
            let to = if i % 3 == 2 {
                To::LoggedIn
            } else {
                To::Only((0..i as u64).collect())
            };
            messages.push(Downstream::Deliver { to, origin, event });
        }
        let mut buf = BytesMut::new();
        for m in &messages {
            m.encode(&mut buf);
        }
        let decoded: Vec<_> = frames(&buf).iter().map(|f| Downstream::decode(f).unwrap()).collect();
        assert_eq!(decoded, messages);
    }

    #[test]
    fn partial_frames_wait_for_the_rest() {
        let mut whole = BytesMut::new();
        Upstream::Line {
            session: 1,
            line: s("msgall hi"),
        }
        .encode(&mut whole);
        let mut codec = codec();
        let mut buf = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            assert!(codec.decode(&mut buf).unwrap().is_none(), "complete after {i} bytes");
            buf.put_u8(*byte);
        }
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(Upstream::decode(&frame), Ok(Upstream::Line { .. })));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = BytesMut::new();
        Upstream::Hello {
            version: VERSION,
            frontend: s("web"),
            instance: 1,
            first: 1,
            sessions: vec![(1, Some(Login { name: s("x"), seq: 2 }))],
        }
        .encode(&mut buf);
        let body = &buf[4..];
        for len in 0..body.len() {
            assert!(Upstream::decode(&body[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Upstream::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            Upstream::decode(b"GET / HTTP/1.1"),
            Err(DecodeError::UnknownTag {
                what: "frontend frame",
                tag: b'G'
            })
        );
        assert_eq!(Upstream::decode(b"\x01JUNK\x00\x01"), Err(DecodeError::BadMagic));
        assert_eq!(
            Upstream::decode(b"\x02\0\0\0\0\0\0\0\x01extra"),
            Err(DecodeError::Trailing(5))
        );
        assert_eq!(
            Upstream::decode(b"\x03\0\0\0\0\0\0\0\x01\0\0\0\x02\xff\xfe"),
            Err(DecodeError::BadUtf8)
        );
        // A count of four billion sessions in a tiny frame allocates nothing.
        assert_eq!(
            Upstream::decode(b"\x01CHAT\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\xff\xff\xff\xff"),
            Err(DecodeError::Truncated)
        );
        assert_eq!(Downstream::decode(b"\x82\xff\xff\xff\xff"), Err(DecodeError::Truncated));
    }

    #[test]
    fn oversized_frames_are_refused_before_buffering() {
        let mut codec = codec();
        let mut buf = BytesMut::new();
        buf.put_u32(MAX_FRAME as u32 + 1);
        assert!(codec.decode(&mut buf).is_err());
    }
}
