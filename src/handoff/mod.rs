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
//! named by `$CHAT_HANDOFF_FD`. Being a socket pair, it has no other possible sender. Each packet
//! is one [`Message`]; descriptors ride with it as `SCM_RIGHTS`, at most [`MAX_FDS`] per packet.
//!
//! ```text
//! frontend → supervisor
//!   'P' (session:u64 slot:u32)*   park: one descriptor per session, in order
//!   'R' session:u64*              release: the sessions ended; close their copies
//!   'C'                           what its readers left (one descriptor, a memfd), the last
//!                                 packet of a hand-over (see `frontend::carry`)
//! supervisor → frontend
//!   'M'                           the server's position file (one descriptor), first
//!   'C'                           what the previous process's readers left, if it handed over
//!   'A' (session:u64 slot:u32)*   adopt: one descriptor per session, in order (a batch)
//!   'E'                           end of adoption: every parked connection has been sent
//!   'H'                           hand over: stop reading, flush every client, exit without a
//!                                 goodbye
//! ```
//!
//! A session's *slot* is its place in the position file ([`state`]), where the process records
//! how far its output was written; the next process reads it to send each client exactly what it
//! missed. [`NO_SLOT`]: none.
//!
//! [`socket`] does the I/O; this file is the pure encoding.

pub mod socket;
pub mod state;

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
/// Largest packet: a release of [`MAX_RELEASES`] ids.
pub const MAX_PACKET: usize = 1 + 8 * MAX_RELEASES;
/// A session without a slot in the position file.
pub const NO_SLOT: u32 = u32::MAX;

/// A parked session: its id and its slot.
pub type Parked = (SessionId, u32);

/// One packet between the supervisor and a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Copies of these sessions' connections ride with this packet, in order.
    Park(Vec<Parked>),
    /// These sessions ended: their copies are to be closed.
    Release(Vec<SessionId>),
    /// The server's position file rides with this packet.
    State,
    /// Parked connections for the new process, in order.
    Adopt(Vec<Parked>),
    /// Every parked connection has been sent.
    Adopted,
    /// Stop, flush, and exit leaving every client connected, for the next process to adopt.
    HandOver,
    /// What a handing-over process's readers left for the next one rides with this packet.
    Carry,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Malformed {
    #[error("an empty packet")]
    Empty,
    #[error("unknown packet tag {0:#04x}")]
    Tag(u8),
    #[error("a list that is not a whole number of entries")]
    Ragged,
    #[error("a packet that should carry nothing carries {0} bytes")]
    Trailing(usize),
}

impl Message {
    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let parked = |tag: u8, list: &[Parked]| {
            let mut out = Vec::with_capacity(1 + 12 * list.len());
            out.push(tag);
            for (id, slot) in list {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&slot.to_be_bytes());
            }
            out
        };
        match self {
            Message::Park(list) => parked(b'P', list),
            Message::Adopt(list) => parked(b'A', list),
            Message::Release(ids) => {
                let mut out = Vec::with_capacity(1 + 8 * ids.len());
                out.push(b'R');
                for id in ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
                out
            }
            Message::State => vec![b'M'],
            Message::Adopted => vec![b'E'],
            Message::HandOver => vec![b'H'],
            Message::Carry => vec![b'C'],
        }
    }

    pub fn decode(packet: &[u8]) -> Result<Self, Malformed> {
        let (&tag, rest) = packet.split_first().ok_or(Malformed::Empty)?;
        let parked = || -> Result<Vec<Parked>, Malformed> {
            if rest.len() % 12 != 0 {
                return Err(Malformed::Ragged);
            }
            Ok(rest
                .chunks_exact(12)
                .map(|c| {
                    let id = u64::from_be_bytes(c[..8].try_into().expect("8 bytes"));
                    (id, u32::from_be_bytes(c[8..].try_into().expect("4 bytes")))
                })
                .collect())
        };
        let ids = || -> Result<Vec<SessionId>, Malformed> {
            if rest.len() % 8 != 0 {
                return Err(Malformed::Ragged);
            }
            Ok(rest
                .chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().expect("chunks of 8")))
                .collect())
        };
        let nothing = |m: Message| {
            if rest.is_empty() {
                Ok(m)
            } else {
                Err(Malformed::Trailing(rest.len()))
            }
        };
        match tag {
            b'P' => Ok(Message::Park(parked()?)),
            b'R' => Ok(Message::Release(ids()?)),
            b'A' => Ok(Message::Adopt(parked()?)),
            b'M' => nothing(Message::State),
            b'E' => nothing(Message::Adopted),
            b'H' => nothing(Message::HandOver),
            b'C' => nothing(Message::Carry),
            other => Err(Malformed::Tag(other)),
        }
    }

    /// How many descriptors must ride with it.
    pub fn fds(&self) -> usize {
        match self {
            Message::Park(list) | Message::Adopt(list) => list.len(),
            Message::State | Message::Carry => 1,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests;
