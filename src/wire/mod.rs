//! The kernel ⇄ frontend wire protocol: message types and their byte encoding. Pure: no I/O.
//! [`encode`] writes frames, [`decode`] reads them back.
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
//!                 resume                             resume = 0:u8 | 1:u8 epoch:u64 seq:u64
//!   0x02 Open     session:u64
//!   0x03 Line     session:u64 line:string
//!   0x04 Closed   session:u64
//!   0x05 Census                                      as a first frame instead of a hello: how many
//!                                                    users each frontend has (for `status`)
//!   0x06 Heartbeat                                   sent after a second without other frames
//!   0x07 Bye                                         the frontend stops for good: log its users
//!                                                    out now (without it, a closed connection
//!                                                    keeps them for a grace period: the frontend
//!                                                    crashed, and its next process adopts them)
//! kernel → frontend
//!   0x81 Welcome  "CHAT" version:u16
//!   0x82 Deliver  origin count:u32 session:u64* event   one frame per frontend per event;
//!                 count 0xFFFFFFFF (no ids): every session of the frontend that is logged in
//!   0x83 Named    session:u64 login                  the session logged in or out
//!   0x84 Close    session:u64                        close it once the frames before are sent
//!   0x85 Census   count:u32 (frontend:string users:u64)* [count:u32 (node:string users:u64)*]
//!                                                    the other nodes of a cluster, if any, last
//!                                                    (none: no list, as an earlier build wrote)
//!   0x86 Ack      seq:u64                            every frame up to seq has been applied
//!   0x87 Heartbeat                                   sent after a second without other frames
//!   0x88 Sync     epoch:u64 next:u64 applied:u64     Deliver, Named and Close frames after it are
//!                                                    numbered, the first `next`; sent once per
//!                                                    connection (after a hello that resumes: the
//!                                                    frames after `seq` come next, again);
//!                                                    `applied`: the last frame of this frontend's
//!                                                    previous connection the kernel applied
//!
//! origin   = instance:u64 seq:u64                    the input that caused it; instance 0: none
//! event    = 1 Login name | 2 Logout name | 3 Private time from to text | 4 Public time from text
//!          | 5 WhoAmI raw:u8 name | 6 UserList raw:u8 count:u32 name* | 7 Help | 8 Error code:u8 [name]
//!          | 9 Greeting motd | 10 LineLost
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
//! # Losing nothing when a frontend's process changes
//! The kernel numbers what it sends each frontend (by name), and keeps the recent frames for a
//! while (see `kernel::hub`); a frontend records the number of each frame it has handled. A new
//! process of that frontend (one that adopted the old one's clients, see [`crate::handoff`]) says
//! hello with `resume` set to the old one's position, and the kernel sends again every frame
//! after it, followed by the live ones. Positions belong to one kernel process (its `epoch`).
//!
//! # Losing nothing when the kernel restarts
//! The frames a frontend sends after its hello are numbered implicitly: the first is `first`, each
//! next one adds 1. The kernel acknowledges them; the frontend keeps every unacknowledged frame
//! and, after reconnecting (to a new kernel, possibly), says hello with `first` set to the oldest
//! of them and sends them again. A frame may so be applied twice, once by each kernel: events
//! carry the `origin` (frontend instance and frame number) of the input that caused them, and a
//! frontend drops an event whose origin it has already seen, so each is shown once.

mod decode;
mod encode;

use thiserror::Error;

use crate::chat::{ChatError, Event, Login, SessionId, SyntaxError};

/// The protocol version a hello and a welcome carry.
pub const VERSION: u16 = 3;
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
        /// The kernel epoch and number of the last frame this frontend (or the process before it)
        /// handled: the kernel sends every later one again.
        resume: Option<(u64, u64)>,
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
    /// Stopping for good; not numbered.
    Bye,
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
    /// Logged-in users per frontend of this kernel, by name, and (a cluster member's) per other
    /// node of the cluster, by node name.
    Census {
        frontends: Vec<(String, u64)>,
        nodes: Vec<(String, u64)>,
    },
    /// Every frame of this frontend numbered up to `seq` has been applied.
    Ack {
        seq: u64,
    },
    /// Still here.
    Heartbeat,
    /// Deliver, Named and Close frames from here on are numbered, the first `next`. `applied`:
    /// the last frame of this frontend's previous connection (its previous process, maybe) that
    /// the kernel applied, 0 for none; a line numbered after it died with that process.
    Sync {
        epoch: u64,
        next: u64,
        applied: u64,
    },
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
const BYE: u8 = 0x07;
const WELCOME: u8 = 0x81;
const DELIVER: u8 = 0x82;
const NAMED: u8 = 0x83;
const CLOSE: u8 = 0x84;
const CENSUS_REPLY: u8 = 0x85;
const ACK: u8 = 0x86;
const HEARTBEAT_DOWN: u8 = 0x87;
const SYNC: u8 = 0x88;

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

/// The framing both sides read with: a big-endian u32 length, bodies up to [`MAX_FRAME`].
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

pub use encode::{encode_deliver, encode_event};

#[cfg(test)]
mod tests;
