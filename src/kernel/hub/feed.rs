//! What the hub sends one frontend (by name), numbered, and the recent part of it kept, so that
//! a new process of that frontend, adopting the old one's clients, gets again every frame the old
//! one had not handled (see [`wire`](crate::wire)). Pure: bytes in, bytes out.
//!
//! The numbered frames are `Deliver`, `Named` and `Close`; the kernel and the frontend count them
//! alike from the `Sync` frame that starts each connection. What is kept is the batches as they
//! were handed to the writer (acknowledgements included, which a replay skips), for
//! [`KEEP`] and at most [`KEEP_BYTES`]: enough for a crashed frontend's next process, which
//! comes back within the kernel's grace, and no more.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

/// How long sent frames are kept for a replay: the grace a vanished frontend has, and more.
pub const KEEP: Duration = Duration::from_secs(10);
/// Bytes kept for a replay, per frontend, at most.
pub const KEEP_BYTES: usize = 16 << 20;

/// Frame tags that are numbered (see [`wire`](crate::wire)).
const NUMBERED: [u8; 3] = [0x82, 0x83, 0x84];

/// One frontend's numbered frames.
#[derive(Debug)]
pub struct Feed {
    /// The number of the next numbered frame.
    next: u64,
    /// Numbered frames encoded and not yet handed over.
    unsent: u64,
    kept: VecDeque<Kept>,
    kept_bytes: usize,
}

#[derive(Debug)]
struct Kept {
    /// The number of its first numbered frame.
    first: u64,
    frames: Bytes,
    at: Instant,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            next: 1,
            unsent: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
        }
    }
}

impl Feed {
    /// The number of the next numbered frame.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// A numbered frame was encoded.
    pub fn numbered(&mut self) {
        self.next += 1;
        self.unsent += 1;
    }

    /// Keeps a batch handed over (or, for a frontend that is away, encoded), holding every
    /// numbered frame encoded since the last one; forgets what is too old or too much.
    pub fn keep(&mut self, frames: Bytes, now: Instant) {
        let first = self.next - std::mem::take(&mut self.unsent);
        self.kept_bytes += frames.len();
        self.kept.push_back(Kept { first, frames, at: now });
        while self.kept_bytes > KEEP_BYTES && self.kept.len() > 1 {
            self.forget_oldest();
        }
        self.expire(now);
    }

    /// Forgets what was kept longer than [`KEEP`].
    pub fn expire(&mut self, now: Instant) {
        while self.kept.front().is_some_and(|k| k.at + KEEP <= now) {
            self.forget_oldest();
        }
    }

    /// When the oldest kept batch is due to be forgotten.
    pub fn expiry(&self) -> Option<Instant> {
        self.kept.front().map(|k| k.at + KEEP)
    }

    fn forget_oldest(&mut self) {
        if let Some(k) = self.kept.pop_front() {
            self.kept_bytes -= k.frames.len();
        }
    }

    /// Every numbered frame after `after`, in order (nothing if `after` is the newest); `None`
    /// if some of them are no longer kept, or `after` was never sent.
    pub fn since(&self, after: u64) -> Option<BytesMut> {
        if after >= self.next {
            return None;
        }
        let oldest = self.kept.front().map_or(self.next, |k| k.first);
        if after + 1 < oldest {
            return None;
        }
        let mut out = BytesMut::new();
        for kept in &self.kept {
            let mut seq = kept.first;
            let mut rest = &kept.frames[..];
            while rest.len() >= 4 {
                let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                let (frame, tail) = rest.split_at(4 + len);
                rest = tail;
                if len > 0 && NUMBERED.contains(&frame[4]) {
                    if seq > after {
                        out.put_slice(frame);
                    }
                    seq += 1;
                }
            }
        }
        Some(out)
    }
}

/// What a frontend that comes back is sent first.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// Every numbered frame after `after`, again.
    From { after: u64, frames: BytesMut },
    /// Those after `after` are no longer all kept: it starts afresh, and its clients miss them.
    Gone { after: u64 },
    /// Nothing to send again: it says it left off nowhere, or with another kernel process.
    Fresh,
}

/// What a frontend that comes back to kernel process `epoch` with `feed` (what it was sent while
/// away) is sent again, by `resume`, where its hello says it left off (kernel epoch, frame).
pub fn replay(feed: &Feed, epoch: u64, resume: Option<(u64, u64)>) -> Replay {
    match resume {
        Some((from, after)) if from == epoch => match feed.since(after) {
            Some(frames) => Replay::From { after, frames },
            None => Replay::Gone { after },
        },
        _ => Replay::Fresh,
    }
}

#[cfg(test)]
mod tests;
