//! What a new process makes of what the one before left of a client (its slot, see
//! [`file`](super::file)), with what the client's socket itself knows: which frames the kernel
//! sends again already reached it, whether input died with the previous process, what the client
//! is to be told, and where the kernel is to resume. Pure: every decision of an adoption, tested as
//! tables without a socket.

use std::collections::HashMap;

use super::file::Left;
use crate::chat::{Login, SessionId};

/// Bytes ever written to a client's socket and ever read from it, by any process, as the socket
/// counts them (`None`: it could not say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub written: Option<u64>,
    pub read: Option<u64>,
}

/// What became of a client's input when the process before ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Nothing of it died.
    Intact,
    /// Lines were sent to the kernel and not acknowledged, the latest carried by frame `line`
    /// (0: it had not been sent yet): the kernel says which of that process's frames it applied.
    Unsure { line: u64 },
    /// Input read and not yet passed on died; `partial`: it ended within a line (or frame), so
    /// where the next one starts in the socket is unknown.
    Lost { partial: bool },
}

/// What a new process makes of an adopted client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The last kernel frame that reached the client: frames the kernel sends again up to it are
    /// not delivered to it twice. `None`: the previous process had no position.
    pub reached: Option<u64>,
    pub input: Input,
    /// Its login, named in the hello (a kernel that restarted meanwhile knows it from nowhere
    /// else).
    pub login: Option<Login>,
}

/// Reads a client's slot, `left`, with its socket's `counts`, given `position`, the last kernel
/// frame the previous process handled.
///
/// A write under way at the death went through if the socket took every byte of it. A read under
/// way, not yet recorded, lost what it read if the socket says bytes were read past where it began
/// (or cannot say).
pub fn recover(left: &Left, counts: Counts, position: Option<u64>) -> Recovery {
    let read_unrecorded = left
        .reading
        .is_some_and(|before| counts.read.is_none_or(|read| read > before));
    let input = if left.held || left.partial || read_unrecorded {
        Input::Lost {
            partial: left.partial || read_unrecorded,
        }
    } else if left.unacked {
        Input::Unsure { line: left.line }
    } else {
        Input::Intact
    };
    let reached = if left.pending {
        let went_through = left.writing > left.written && counts.written.is_some_and(|w| w >= left.write_end);
        Some(if went_through { left.writing } else { left.written })
    } else {
        position
    };
    Recovery {
        reached,
        input,
        login: left.login.clone(),
    }
}

/// What an adopted client's connection does before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Go on: nothing of its input died, or its reader's state was taken over whole.
    GoOn,
    /// Whole lines died: tell the client (`your last line was lost`).
    TellLost,
    /// Part of a line died: telnet skips to the end of that line and tells the client; a
    /// WebSocket, which cannot find the next frame, is closed (1012) and the page reconnects.
    MidLine,
}

/// How an adopted client starts, by what became of its input and whether what its reader left
/// on a planned hand-over was `taken_over` (its decoder restored).
pub fn start(input: Input, taken_over: bool) -> Start {
    match input {
        _ if taken_over => Start::GoOn,
        Input::Lost { partial: true } => Start::MidLine,
        Input::Lost { partial: false } => Start::TellLost,
        Input::Intact | Input::Unsure { .. } => Start::GoOn,
    }
}

/// The clients whose latest line died, of those `unsure` (by the frame that carried it), once the
/// kernel says it applied the previous process's frames up to `applied`.
pub fn lost_after(unsure: &HashMap<SessionId, u64>, applied: u64) -> Vec<SessionId> {
    let mut lost: Vec<SessionId> = unsure
        .iter()
        .filter(|(_, line)| **line == 0 || **line > applied)
        .map(|(id, _)| *id)
        .collect();
    lost.sort_unstable();
    lost
}

/// Where the kernel is to resume sending: the previous process's `position` (kernel epoch,
/// frame), or earlier, the last frame that reached every adopted client.
pub fn resume_from(position: Option<(u64, u64)>, reached: impl IntoIterator<Item = Option<u64>>) -> Option<(u64, u64)> {
    let (epoch, at) = position?;
    Some((epoch, reached.into_iter().flatten().fold(at, u64::min)))
}

#[cfg(test)]
mod tests;
