//! The acknowledgement ledger, pure: a frontend's frame is acknowledged only once everything it
//! caused has been written to every frontend it went to, and acknowledgements go out in the order
//! the frames were applied (a frontend drops its copies up to the acknowledged number, so an
//! acknowledgement may never overtake an earlier frame's).

use std::collections::VecDeque;

use crate::chat::FrontendId;

/// A frame waiting for writes: `seq` of `frontend` is confirmed once every frontend in `after`
/// has written its batch.
#[derive(Debug)]
struct Waiting {
    frontend: FrontendId,
    seq: u64,
    after: Vec<(FrontendId, u64)>,
}

/// Applied frames whose effects are not all written yet, oldest first.
#[derive(Debug, Default)]
pub struct Ledger {
    waiting: VecDeque<Waiting>,
}

impl Ledger {
    /// Frame `seq` of `frontend` was applied; its effects are in the batches `after` (frontend,
    /// batch number) handed to the writers.
    pub fn record(&mut self, frontend: FrontendId, seq: u64, after: &[(FrontendId, u64)]) {
        self.waiting.push_back(Waiting {
            frontend,
            seq,
            after: after.to_vec(),
        });
    }

    /// Takes the acknowledgements now due, in order: `written(f)` is the last batch frontend `f`
    /// has written, or `None` if it is gone (what it was to get no longer matters).
    pub fn confirm(&mut self, written: impl Fn(FrontendId) -> Option<u64>, mut ack: impl FnMut(FrontendId, u64)) {
        while let Some(first) = self.waiting.front() {
            let done = first
                .after
                .iter()
                .all(|(id, batch)| written(*id).is_none_or(|w| w >= *batch));
            if !done {
                return;
            }
            let entry = self.waiting.pop_front().expect("checked");
            ack(entry.frontend, entry.seq);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn confirm(ledger: &mut Ledger, written: &HashMap<FrontendId, u64>) -> Vec<(FrontendId, u64)> {
        let mut acks = Vec::new();
        ledger.confirm(|id| written.get(&id).copied(), |f, s| acks.push((f, s)));
        acks
    }

    #[test]
    fn acknowledged_once_written_everywhere() {
        let mut ledger = Ledger::default();
        ledger.record(1, 10, &[(1, 5), (2, 5)]);
        let mut written = HashMap::from([(1, 5), (2, 4)]);
        assert!(
            confirm(&mut ledger, &written).is_empty(),
            "frontend 2 has not written batch 5"
        );
        written.insert(2, 5);
        assert_eq!(confirm(&mut ledger, &written), [(1, 10)]);
        assert!(ledger.is_empty());
    }

    #[test]
    fn in_order_even_when_a_later_frame_is_written_first() {
        let mut ledger = Ledger::default();
        ledger.record(1, 1, &[(2, 7)]);
        ledger.record(3, 9, &[(3, 8)]);
        ledger.record(1, 2, &[]);
        let mut written = HashMap::from([(2, 6), (3, 8)]);
        assert!(confirm(&mut ledger, &written).is_empty());
        written.insert(2, 7);
        assert_eq!(confirm(&mut ledger, &written), [(1, 1), (3, 9), (1, 2)]);
    }

    #[test]
    fn a_frontend_that_is_gone_holds_nothing_up() {
        let mut ledger = Ledger::default();
        ledger.record(1, 4, &[(1, 2), (9, 3)]);
        let written = HashMap::from([(1, 2)]);
        assert_eq!(confirm(&mut ledger, &written), [(1, 4)]);
    }
}
