//! What a child reports on its notify socket, and when its silence means it hung (systemd's
//! `WatchdogSec`). Pure: the caller reads the socket and passes the clock in.
//!
//! The clock starts at the spawn, not at `READY=1`: a child that hangs while starting is caught as
//! well (a slow one that keeps its loop turning pings while it waits).

use std::time::Duration;

use tokio::time::Instant;

/// One line of a notify datagram that the supervisor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// `READY=1`: it serves now.
    Ready,
    /// `WATCHDOG=1`: its event loop still turns.
    Alive,
    /// `STOPPING=1`: it is shutting down on purpose.
    Stopping,
}

/// The notices in one datagram (newline-separated `KEY=VALUE` lines; others are ignored).
pub fn notices(datagram: &[u8]) -> impl Iterator<Item = Notice> + '_ {
    datagram.split(|b| *b == b'\n').filter_map(|line| match line {
        b"READY=1" => Some(Notice::Ready),
        b"WATCHDOG=1" => Some(Notice::Alive),
        b"STOPPING=1" => Some(Notice::Stopping),
        _ => None,
    })
}

/// A watchdog deadline noticed this much after it passed means the supervisor itself did not run
/// meanwhile (the whole host was paused, or starved): the child is given a new deadline rather
/// than taken for hung, since it could not be heard either.
pub const PAUSED: Duration = Duration::from_secs(1);

/// How often the supervisor's [`Pulse`] ticks.
pub const PULSE: Duration = Duration::from_millis(100);

/// The supervisor's own heartbeat, ticked every [`PULSE`]: a gap of [`PAUSED`] or more between
/// two ticks means the supervisor did not run meanwhile. A deadline noticed late is not enough to
/// see that: paused 6 s with a 5 s watchdog, it is noticed less than a second late.
#[derive(Debug, Clone, Copy)]
pub struct Pulse {
    last: Instant,
    /// The end of the latest gap.
    resumed: Option<Instant>,
}

impl Pulse {
    pub fn new(now: Instant) -> Self {
        Self {
            last: now,
            resumed: None,
        }
    }

    /// A tick; a gap since the last one is recorded.
    pub fn tick(&mut self, now: Instant) {
        if now >= self.last + PAUSED {
            self.resumed = Some(now);
        }
        self.last = self.last.max(now);
    }

    /// Whether the supervisor missed time after `since` (a child's last ping): it has not ticked
    /// for [`PAUSED`] (it is only now running again), or a gap ended after `since`.
    pub fn missed_since(&self, since: Instant, now: Instant) -> bool {
        now >= self.last + PAUSED || self.resumed.is_some_and(|resumed| resumed > since)
    }
}

/// The watchdog of one run of a child.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    /// Longest silence allowed; `None`: no watchdog.
    limit: Option<Duration>,
    /// The spawn, or the last `WATCHDOG=1`.
    last: Instant,
}

impl Watchdog {
    /// The clock starts now (at the spawn).
    pub fn new(limit: Option<Duration>, now: Instant) -> Self {
        Self { limit, last: now }
    }

    /// Records a `WATCHDOG=1`.
    pub fn alive(&mut self, now: Instant) {
        self.last = self.last.max(now);
    }

    /// When the child is overdue if it says nothing before; `None` without a watchdog.
    pub fn deadline(&self) -> Option<Instant> {
        self.limit.map(|limit| self.last + limit)
    }

    /// True once the child has been silent for the whole limit.
    #[cfg(test)]
    pub fn overdue(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }

    /// Whether the deadline passed [`PAUSED`] or more before `now`, when it is noticed: the
    /// supervisor was not running at the deadline (then [`alive`](Self::alive) renews it).
    pub fn noticed_late(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline + PAUSED)
    }

    /// The spawn, or the last `WATCHDOG=1`.
    pub fn last(&self) -> Instant {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(2);

    #[test]
    fn a_datagram_may_carry_several_notices() {
        let got: Vec<_> = notices(b"READY=1\nSTATUS=serving\nWATCHDOG=1").collect();
        assert_eq!(got, [Notice::Ready, Notice::Alive]);
        assert_eq!(notices(b"STOPPING=1").collect::<Vec<_>>(), [Notice::Stopping]);
        assert_eq!(notices(b"WATCHDOG=trigger").count(), 0);
        assert_eq!(notices(b"").count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_for_the_limit_since_the_spawn_is_overdue() {
        let watchdog = Watchdog::new(Some(LIMIT), Instant::now());
        tokio::time::advance(LIMIT - Duration::from_millis(1)).await;
        assert!(!watchdog.overdue(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(watchdog.overdue(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn each_ping_restarts_the_clock() {
        let mut watchdog = Watchdog::new(Some(LIMIT), Instant::now());
        for _ in 0..5 {
            tokio::time::advance(LIMIT / 2).await;
            watchdog.alive(Instant::now());
            assert!(!watchdog.overdue(Instant::now()));
        }
        tokio::time::advance(LIMIT - Duration::from_millis(1)).await;
        assert!(!watchdog.overdue(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(watchdog.overdue(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_until_the_deadline_ends_when_it_is_overdue() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(Some(LIMIT), start);
        tokio::time::advance(Duration::from_millis(1500)).await;
        watchdog.alive(Instant::now());
        tokio::time::sleep_until(watchdog.deadline().unwrap()).await;
        assert!(watchdog.overdue(Instant::now()));
        assert_eq!(Instant::now() - start, Duration::from_millis(1500) + LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_noticed_long_after_it_passed_is_a_pause_of_the_supervisor() {
        let watchdog = Watchdog::new(Some(LIMIT), Instant::now());
        tokio::time::advance(LIMIT).await;
        assert!(watchdog.overdue(Instant::now()) && !watchdog.noticed_late(Instant::now()));
        tokio::time::advance(PAUSED).await;
        assert!(watchdog.noticed_late(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_in_the_pulse_after_the_last_ping_is_a_pause_whichever_wakes_first() {
        let start = Instant::now();
        let mut pulse = Pulse::new(start);
        let watchdog = Watchdog::new(Some(LIMIT), start);
        tokio::time::advance(PULSE).await;
        pulse.tick(Instant::now());
        assert!(!pulse.missed_since(watchdog.last(), Instant::now()));
        // Paused a little longer than the limit: the deadline is noticed less than PAUSED late.
        tokio::time::advance(LIMIT + PAUSED / 2).await;
        let now = Instant::now();
        assert!(watchdog.overdue(now) && !watchdog.noticed_late(now));
        // The watchdog's timer runs first: the pulse has not ticked for the whole pause.
        assert!(pulse.missed_since(watchdog.last(), now));
        // Or the pulse's runs first: it records the gap.
        pulse.tick(now);
        assert!(pulse.missed_since(watchdog.last(), now));
        // A child silent for the limit with the supervisor running all along is hung.
        let renewed = Watchdog::new(Some(LIMIT), now);
        for _ in 0..(LIMIT.as_millis() / PULSE.as_millis()) {
            tokio::time::advance(PULSE).await;
            pulse.tick(Instant::now());
        }
        let now = Instant::now();
        assert!(renewed.overdue(now) && !pulse.missed_since(renewed.last(), now));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_it_never_fires() {
        let watchdog = Watchdog::new(None, Instant::now());
        assert_eq!(watchdog.deadline(), None);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(!watchdog.overdue(Instant::now()));
    }
}
