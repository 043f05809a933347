//! Rate limits, pure: a token bucket (a client's input lines, IRC's "fakelag") and a log limiter
//! built on it, so that no client can make a process log without bound.
//!
//! The caller passes the clock in, so both are tested without waiting.

use parking_lot::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `rate` tokens a second, at most `burst` saved up. A rate of 0 means unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: now,
        }
    }

    pub fn unlimited(&self) -> bool {
        self.rate == 0.0
    }

    /// Takes one token, or says how long until one is there (nothing is taken then).
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.unlimited() {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// A share of wall time that may be spent on something (waiting, say): it accrues at `share`
/// seconds per second, up to `burst`.
#[derive(Debug, Clone)]
pub struct TimeBudget {
    share: f64,
    burst: f64,
    available: f64,
    last: Instant,
}

impl TimeBudget {
    /// A full budget.
    pub fn new(share: f64, burst: Duration, now: Instant) -> Self {
        Self {
            share,
            burst: burst.as_secs_f64(),
            available: burst.as_secs_f64(),
            last: now,
        }
    }

    /// How much may be spent now.
    pub fn available(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.available = (self.available + elapsed * self.share).min(self.burst);
        Duration::from_secs_f64(self.available.max(0.0))
    }

    /// Records time spent.
    pub fn spend(&mut self, spent: Duration) {
        self.available -= spent.as_secs_f64();
    }
}

/// Lets a kind of warning through at most `burst` times at once and `rate` times a second after
/// that, and counts what it held back, so that the next line that passes can say how many.
#[derive(Debug)]
pub struct Warnings {
    state: Mutex<(TokenBucket, u64)>,
}

impl Warnings {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            state: Mutex::new((TokenBucket::new(rate, burst, Instant::now()), 0)),
        }
    }

    /// `Some(held back since the last one that passed)` if this warning may be logged now.
    pub fn pass(&self) -> Option<u64> {
        self.pass_at(Instant::now())
    }

    pub fn pass_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        let (bucket, held) = &mut *state;
        match bucket.take(now) {
            Ok(()) => Some(std::mem::take(held)),
            Err(_) => {
                *held += 1;
                None
            }
        }
    }
}

/// Logs a warning through a [`Warnings`] limiter, with the count of those held back before it.
#[macro_export]
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limit.pass() {
            tracing::warn!(suppressed, $($arg)+);
        }
    };
}

/// Logs an info line through a [`Warnings`] limiter, with the count of those held back before it:
/// lines a client can cause at will (connects, logins) must not let it flood the log.
#[macro_export]
macro_rules! info_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limit.pass() {
            tracing::info!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        let wait = bucket.take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(bucket.take(start + Duration::from_millis(99)).is_err());
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
        // Tokens never pile up past the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, 1, now);
        for _ in 0..10_000 {
            assert_eq!(bucket.take(now), Ok(()));
        }
    }

    #[test]
    fn a_denied_take_costs_nothing() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1, 1, start);
        bucket.take(start).unwrap();
        for ms in [100, 200, 500, 900] {
            assert!(bucket.take(start + Duration::from_millis(ms)).is_err());
        }
        assert_eq!(bucket.take(start + Duration::from_millis(1000)), Ok(()));
    }

    #[test]
    fn a_time_budget_is_a_share_of_the_clock() {
        let start = Instant::now();
        let mut budget = TimeBudget::new(0.25, Duration::from_secs(1), start);
        assert_eq!(budget.available(start), Duration::from_secs(1));
        budget.spend(Duration::from_secs(1));
        assert_eq!(budget.available(start), Duration::ZERO);
        assert_eq!(
            budget.available(start + Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        budget.spend(Duration::from_millis(700));
        assert_eq!(budget.available(start + Duration::from_secs(2)), Duration::ZERO);
        assert_eq!(
            budget.available(start + Duration::from_secs(100)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn warnings_count_what_they_hold_back() {
        let start = Instant::now();
        let warnings = Warnings::new(1, 2);
        assert_eq!(warnings.pass_at(start), Some(0));
        assert_eq!(warnings.pass_at(start), Some(0));
        for _ in 0..1000 {
            assert_eq!(warnings.pass_at(start), None);
        }
        assert_eq!(warnings.pass_at(start + Duration::from_secs(1)), Some(1000));
        assert_eq!(warnings.pass_at(start + Duration::from_secs(1)), None);
    }
}
