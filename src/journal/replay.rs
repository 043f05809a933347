//! Which of the frames the kernel sends again already reached which adopted client, so that a
//! new process delivers each frame to each client once. Pure.
//!
//! A new process's hello asks the kernel to send again what came after the earliest frame that
//! reached every adopted client ([`resume_from`](super::recover::resume_from)); each client's own
//! *floor* is the last frame that reached it. Floors are numbers of one kernel process (its
//! epoch): when another numbers what follows (the kernel restarted meanwhile), nothing is sent
//! again and the floors go.

use std::collections::HashMap;

use crate::chat::SessionId;

/// The adopted clients' floors.
#[derive(Debug, Default)]
pub struct Floors {
    of: HashMap<SessionId, u64>,
    /// The highest floor: past it, nothing is to be skipped.
    highest: u64,
    /// The kernel process the floors are numbers of.
    epoch: u64,
}

impl Floors {
    /// The floors to come are numbers of kernel process `epoch`.
    pub fn of_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Frames up to `floor` reached client `id` already.
    pub fn reached(&mut self, id: SessionId, floor: u64) {
        self.of.insert(id, floor);
        self.highest = self.highest.max(floor);
    }

    /// Kernel process `epoch` numbers what follows: floors of another mean nothing to it.
    pub fn numbered_by(&mut self, epoch: u64) {
        if self.epoch != epoch && !self.of.is_empty() {
            *self = Self::default();
        }
    }

    /// Whether frame `seq` (0: no frame, a message of this process's own) reached client `id`
    /// already.
    pub fn skip(&self, id: SessionId, seq: u64) -> bool {
        seq > 0 && seq <= self.highest && self.of.get(&id).is_some_and(|floor| seq <= *floor)
    }

    /// Frame `seq` goes to everyone: once past every floor, the floors are done with.
    pub fn passed(&mut self, seq: u64) {
        if !self.of.is_empty() && seq > self.highest {
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_frame_reaches_each_client_once() {
        let mut floors = Floors::default();
        floors.of_epoch(7);
        floors.reached(1, 10);
        floors.reached(2, 12);
        #[rustfmt::skip]
        let table = [
            // (client, frame, skipped)
            (1, 0, false),   // the frontend's own message
            (1, 10, true),
            (1, 11, false),
            (2, 11, true),
            (2, 12, true),
            (2, 13, false),
            (3, 5, false),   // not adopted
        ];
        for (id, seq, skipped) in table {
            assert_eq!(floors.skip(id, seq), skipped, "client {id}, frame {seq}");
        }
    }

    #[test]
    fn floors_go_with_their_kernel_or_once_passed() {
        let mut floors = Floors::default();
        floors.of_epoch(7);
        floors.reached(1, 10);
        floors.numbered_by(7);
        assert!(floors.skip(1, 10), "the same kernel");
        floors.numbered_by(8);
        assert!(!floors.skip(1, 10), "another kernel sends nothing again");

        floors.of_epoch(8);
        floors.reached(1, 10);
        floors.passed(10);
        assert!(floors.skip(1, 10), "not past it yet");
        floors.passed(11);
        assert!(!floors.skip(1, 10), "a broadcast past every floor");
    }
}
