//! Client connections that outlive their frontend process.
//!
//! A frontend hands a duplicate of every client connection to the supervisor, with its session
//! id, as it accepts it (*parks* it), and tells the supervisor to drop the copy when the session
//! ends (*releases* it). A frontend that dies, by a crash or a planned restart, leaves its clients
//! connected: the supervisor's copies keep their sockets open, and the next process of that
//! server *adopts* them, says hello to the kernel with the same session ids, and serves them on.
//! The kernel keeps a vanished frontend's sessions for a grace period, so nobody sees a logout or
//! a login. This is systemd's file-descriptor store (`FDSTORE=1`), one connection at a time.
//!
//! The supervisor and each frontend process talk over a private `SOCK_SEQPACKET` socket pair,
//! created by the supervisor for each process it starts; the frontend inherits its end as fd 4,
//! named by `$CHAT_HANDOFF_FD`. A descriptor can be passed on, so the supervisor's end takes
//! packets from the process it started alone (`SO_PASSCRED`, see [`socket`]). Each packet is
//! one [`Message`]; descriptors ride with it as `SCM_RIGHTS`, at most [`MAX_FDS`] per packet.
//!
//! ```text
//! frontend → supervisor
//!   Park [(session, slot)]  one descriptor per session, in order
//!   Release [session]       the sessions ended; close their copies
//!   Carry                   what its readers left (one descriptor, a memfd), the last packet of
//!                           a hand-over (see `journal::carry`)
//! supervisor → frontend
//!   PositionFile            the server's position file (one descriptor), first
//!   Carry                   what the previous process's readers left, if it handed over
//!   Adopt [(session, slot)] one descriptor per session, in order (a batch)
//!   Adopted                 end of adoption: every parked connection has been sent
//!   HandOver                stop reading, flush every client, exit without a goodbye
//! ```
//!
//! A session's *slot* is its place in the position file (see `journal`), where the process records
//! how far its output was written; the next process reads it to send each client exactly what it
//! missed. [`NO_SLOT`]: none.
//!
//! A packet is a version byte (`VERSION`) and the message in postcard, serde's compact format
//! (see `versioned`): the variant's index, then its list (a length, then each entry's numbers as
//! varints). A packet of another version is refused, not misread: the supervisor outlives the
//! binary it was started from, and a child runs the one installed since. A packet that starts
//! with a letter is of the layout before versions (`unversioned`), which a frontend reads, and
//! answers in, for a supervisor of such a build.
//!
//! [`socket`] does the I/O; this file is the pure encoding.

pub(crate) mod socket;
mod unversioned;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::chat::SessionId;

/// Descriptors in one packet at most (Linux's `SCM_MAX_FD` is 253).
pub const MAX_FDS: usize = crate::sys::fd::MAX_FDS;
/// Session ids in one release packet at most.
pub const MAX_RELEASES: usize = 1024;
/// The environment variable naming the frontend's end of its handoff socket.
pub const ENV: &str = "CHAT_HANDOFF_FD";
/// The descriptor the frontend inherits its end as.
pub const FD: i32 = 4;
/// Largest packet: the version, the variant, the list's length and [`MAX_RELEASES`] ids at their
/// longest (10 bytes each), a release. (A park or an adoption of [`MAX_FDS`] sessions takes at
/// most 15 bytes a session: under 3,800 bytes.)
pub const MAX_PACKET: usize = 2 + varint_len(MAX_RELEASES as u64) + MAX_RELEASES * varint_len(SessionId::MAX);
/// A session without a slot in the position file.
pub const NO_SLOT: u32 = u32::MAX;

/// The packets' layout ([`Message`] in postcard, its variants in their order): a packet of
/// another version is refused. Bump it with any change to `Message`; a new variant goes last.
const VERSION: u8 = 1;

/// A session as the handoff socket names it: its id and its slot in the position file.
pub type SessionSlot = (SessionId, u32);

/// One packet between the supervisor and a frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Copies of these sessions' connections ride with this packet, in order.
    Park(Vec<SessionSlot>),
    /// These sessions ended: their copies are to be closed.
    Release(Vec<SessionId>),
    /// The server's position file rides with this packet.
    PositionFile,
    /// Parked connections for the new process, in order.
    Adopt(Vec<SessionSlot>),
    /// Every parked connection has been sent.
    Adopted,
    /// Stop, flush, and exit leaving every client connected, for the next process to adopt.
    HandOver,
    /// What a handing-over process's readers left for the next one rides with this packet.
    Carry,
}

/// How a packet is laid out: versioned, or as the builds before versions wrote it (see
/// `unversioned`); a channel answers its peer in the layout the peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Versioned,
    Unversioned,
}

/// Why a packet was not read as a [`Message`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Malformed {
    #[error("a malformed handoff packet: {0}")]
    Versioned(#[from] crate::versioned::Refused),
    #[error("a malformed handoff packet of the unversioned layout: {0}")]
    Unversioned(&'static str),
}

impl Message {
    /// The packet's bytes.
    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(Layout::Versioned)
    }

    /// The packet's bytes in `layout`.
    pub fn encode_as(&self, layout: Layout) -> Vec<u8> {
        match layout {
            Layout::Versioned => crate::versioned::encode(VERSION, self, self.max_len()),
            Layout::Unversioned => unversioned::encode(self),
        }
    }

    /// The message a packet carries, in either layout.
    #[cfg(test)]
    pub fn decode(packet: &[u8]) -> Result<Self, Malformed> {
        Self::decode_with_layout(packet).map(|(message, _)| message)
    }

    /// The message a packet carries, and the layout it came in.
    pub fn decode_with_layout(packet: &[u8]) -> Result<(Self, Layout), Malformed> {
        match packet.split_first() {
            Some((&tag, rest)) if unversioned::is_tag(tag) => unversioned::decode(tag, rest)
                .map(|message| (message, Layout::Unversioned))
                .map_err(Malformed::Unversioned),
            _ => Ok((crate::versioned::decode(VERSION, packet)?, Layout::Versioned)),
        }
    }

    /// Its packet's length at most: the version, the variant, a list's length, and each entry's
    /// numbers at their longest as varints.
    fn max_len(&self) -> usize {
        let entries = match self {
            Message::Park(list) | Message::Adopt(list) => {
                list.len() * (varint_len(u64::MAX) + varint_len(u32::MAX.into()))
            }
            Message::Release(ids) => ids.len() * varint_len(u64::MAX),
            _ => 0,
        };
        2 + varint_len(usize::MAX as u64) + entries
    }

    /// How many descriptors must ride with it.
    pub fn fds(&self) -> usize {
        match self {
            Message::Park(list) | Message::Adopt(list) => list.len(),
            Message::PositionFile | Message::Carry => 1,
            _ => 0,
        }
    }
}

/// The bytes of `n` as a varint: 7 bits a byte.
const fn varint_len(n: u64) -> usize {
    let bits = u64::BITS - n.leading_zeros();
    if bits == 0 { 1 } else { bits.div_ceil(7) as usize }
}

#[cfg(test)]
mod tests;
