//! The kernel link's heartbeat rule (see [`wire`](crate::wire)), kept off the hot path: a ticker
//! every [`HEARTBEAT`] and a flag the owner sets on each frame, instead of a timer per frame. A
//! reader takes its peer for hung after [`SILENT_TICKS`] ticks without a frame (3 to 4 s); a
//! writer sends a heartbeat at each tick that finds it sent nothing since the last.

use tokio::time::{Interval, MissedTickBehavior};

use crate::wire::{HEARTBEAT, HEARTBEAT_TIMEOUT};

/// Ticks without a frame after which the peer counts as hung.
pub const SILENT_TICKS: u32 = (HEARTBEAT_TIMEOUT.as_millis() / HEARTBEAT.as_millis()) as u32;

/// Whether anything happened between ticks.
#[derive(Debug)]
pub struct Beat {
    ticks: Interval,
    active: bool,
    idle: u32,
}

impl Beat {
    pub fn new() -> Self {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            ticks,
            active: false,
            idle: 0,
        }
    }

    /// A frame went by.
    pub fn active(&mut self) {
        self.active = true;
    }

    /// Waits for the next tick; returns how many ticks in a row found nothing.
    pub async fn tick(&mut self) -> u32 {
        self.ticks.tick().await;
        if std::mem::take(&mut self.active) {
            self.idle = 0;
        } else {
            self.idle += 1;
        }
        self.idle
    }
}

impl Default for Beat {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_is_counted_in_ticks() {
        let start = tokio::time::Instant::now();
        let mut beat = Beat::new();
        beat.active();
        assert_eq!(beat.tick().await, 0);
        assert_eq!(start.elapsed(), HEARTBEAT);
        assert_eq!(beat.tick().await, 1);
        assert_eq!(beat.tick().await, 2);
        beat.active();
        assert_eq!(beat.tick().await, 0);
        for silent in 1..=SILENT_TICKS {
            assert_eq!(beat.tick().await, silent);
        }
        assert_eq!(SILENT_TICKS, 3);
    }
}
