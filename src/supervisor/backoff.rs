//! When to restart a child that exited: at once after a stable run (a one-off crash costs no
//! wait), then exponential backoff from 100 ms, and a crash-loop verdict, except for the kernel:
//! every frontend needs it, so parking it would park the whole chat; it is retried at the capped
//! delay for as long as it takes. Pure: the caller passes the clock in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Delay of the second restart in a row; the first is immediate.
pub const FIRST: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub const CAP: Duration = Duration::from_secs(5);
/// A run this long counts as a successful start (supervisord's `startsecs`): the next failure
/// starts the backoff and the crash-loop count over.
pub const STABLE: Duration = Duration::from_secs(1);
/// This many failures within [`WINDOW`], none after a stable run, make a crash loop.
pub const LOOP_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(30);
/// How long a crash-looping child stays failed before one more try.
pub const COOL_DOWN: Duration = Duration::from_secs(60);

/// What to do after a child exited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start it again after this delay.
    Retry(Duration),
    /// It is crash-looping: mark it failed and wait [`COOL_DOWN`] (or a manual restart).
    Failed,
}

/// The restart history of one child.
#[derive(Debug)]
pub struct Backoff {
    /// Consecutive failures since the last stable run.
    streak: u32,
    /// Recent failure times, for crash-loop detection.
    recent: VecDeque<Instant>,
    /// Whether a crash loop ends in [`Verdict::Failed`].
    gives_up: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            streak: 0,
            recent: VecDeque::new(),
            gives_up: true,
        }
    }
}

impl Backoff {
    /// From now on, never give [`Verdict::Failed`].
    pub fn never_fail(&mut self) {
        self.gives_up = false;
        self.recent.clear();
    }

    /// Records an exit of a child that ran for `ran` and decides what comes next.
    pub fn failed(&mut self, now: Instant, ran: Duration) -> Verdict {
        if ran >= STABLE {
            self.streak = 0;
            self.recent.clear();
        }
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            self.recent.pop_front();
        }
        if self.gives_up {
            self.recent.push_back(now);
        }
        if self.recent.len() >= LOOP_FAILURES {
            self.reset();
            return Verdict::Failed;
        }
        let delay = match self.streak {
            0 => Duration::ZERO,
            n => FIRST.saturating_mul(1 << (n - 1).min(16)).min(CAP),
        };
        self.streak += 1;
        Verdict::Retry(delay)
    }

    /// Forgets the history (after a cool-down or a manual restart).
    pub fn reset(&mut self) {
        self.streak = 0;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediate_then_doubles_from_100ms_to_the_cap() {
        let mut b = Backoff::default();
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..8 {
            now += WINDOW; // spread out: never a crash loop
            match b.failed(now, Duration::from_millis(1)) {
                Verdict::Retry(d) => delays.push(d.as_millis()),
                Verdict::Failed => panic!("not a loop"),
            }
        }
        assert_eq!(delays, [0, 100, 200, 400, 800, 1600, 3200, 5000]);
    }

    #[test]
    fn a_stable_run_resets_the_delay() {
        let mut b = Backoff::default();
        let now = Instant::now();
        b.failed(now, Duration::ZERO);
        b.failed(now, Duration::ZERO);
        assert_eq!(b.failed(now + STABLE * 2, STABLE), Verdict::Retry(Duration::ZERO));
    }

    #[test]
    fn quick_failures_make_a_crash_loop() {
        let mut b = Backoff::default();
        let now = Instant::now();
        for i in 0..LOOP_FAILURES - 1 {
            assert!(matches!(
                b.failed(now + Duration::from_millis(i as u64), Duration::ZERO),
                Verdict::Retry(_)
            ));
        }
        assert_eq!(
            b.failed(now + Duration::from_millis(9), Duration::ZERO),
            Verdict::Failed
        );
        // After the verdict the history starts over.
        assert_eq!(
            b.failed(now + Duration::from_millis(10), Duration::ZERO),
            Verdict::Retry(Duration::ZERO)
        );
    }

    #[test]
    fn the_kernel_is_never_parked() {
        let mut b = Backoff::default();
        b.never_fail();
        let now = Instant::now();
        let mut delays = Vec::new();
        for i in 0..LOOP_FAILURES * 4 {
            match b.failed(now + Duration::from_millis(i as u64), Duration::ZERO) {
                Verdict::Retry(d) => delays.push(d),
                Verdict::Failed => panic!("the kernel was parked after {i} quick failures"),
            }
        }
        assert!(delays.iter().all(|d| *d <= CAP), "{delays:?}");
        assert_eq!(delays.last(), Some(&CAP));
        // A stable run still starts the delays over.
        assert_eq!(b.failed(now + WINDOW, STABLE), Verdict::Retry(Duration::ZERO));
    }

    #[test]
    fn never_fail_keeps_the_streak_but_drops_the_loop_count() {
        let mut b = Backoff::default();
        let now = Instant::now();
        for _ in 0..LOOP_FAILURES - 1 {
            assert!(matches!(b.failed(now, Duration::ZERO), Verdict::Retry(_)));
        }
        b.never_fail();
        for _ in 0..LOOP_FAILURES * 2 {
            assert!(matches!(b.failed(now, Duration::ZERO), Verdict::Retry(_)));
        }
        assert_eq!(b.failed(now, Duration::ZERO), Verdict::Retry(CAP));
        // A manual restart forgets the history, not the rule.
        b.reset();
        for _ in 0..LOOP_FAILURES * 2 {
            assert!(matches!(b.failed(now, Duration::ZERO), Verdict::Retry(_)));
        }
    }
}
