//! The acknowledgements of each local frontend's frames.
//!
//! Invariant: a frontend is told its frames are done up to N only once every frame up to N that
//! arrived is done (its script ran, or its answer is out), and each N only once, increasing. A
//! frame is done in its session's order, and sessions finish at their own pace, so frames finish
//! out of order: the acknowledgement stops at the first one still open.

use std::collections::{BTreeSet, HashMap};

use crate::chat::FrontendId;

/// Every local frontend's frames.
#[derive(Debug, Default)]
pub(super) struct Acks {
    frontends: HashMap<FrontendId, Frames>,
}

/// One frontend's frames.
#[derive(Debug, Default)]
struct Frames {
    /// Arrived and not done.
    open: BTreeSet<u64>,
    highest: u64,
    reported: u64,
}

impl Frames {
    /// Every frame up to this one is done.
    fn done_up_to(&self) -> u64 {
        self.open.first().map_or(self.highest, |first| first - 1)
    }
}

impl Acks {
    /// Frontend `frontend` said hello: its frames are numbered anew.
    pub(super) fn attach(&mut self, frontend: FrontendId) {
        self.frontends.insert(frontend, Frames::default());
    }

    pub(super) fn forget(&mut self, frontend: FrontendId) {
        self.frontends.remove(&frontend);
    }

    pub(super) fn arrived(&mut self, frontend: FrontendId, seq: u64) {
        let frames = self.frontends.entry(frontend).or_default();
        frames.open.insert(seq);
        frames.highest = frames.highest.max(seq);
    }

    pub(super) fn done(&mut self, (frontend, seq): (FrontendId, u64)) {
        if let Some(frames) = self.frontends.get_mut(&frontend) {
            frames.open.remove(&seq);
        }
    }

    /// The frontends whose frames are all done up to a number not reported yet.
    pub(super) fn take_done(&mut self) -> Vec<(FrontendId, u64)> {
        let mut done = Vec::new();
        for (frontend, frames) in &mut self.frontends {
            let upto = frames.done_up_to();
            if upto > frames.reported {
                frames.reported = upto;
                done.push((*frontend, upto));
            }
        }
        done
    }
}

#[cfg(test)]
mod tests;
