//! The scenarios, one file each; every one returns its figures as JSON, with the keys
//! [`crate::report`] and BENCHMARKS.md's readers know.

pub mod burst;
pub mod cluster;
pub mod fanout;
pub mod handoff;
pub mod idle;
pub mod large_fanout;
pub mod latency;
pub mod peer;
pub mod restart;
pub mod start_stop;
pub mod web_cpu;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Samples in microseconds as `{"samples", "p50_us", "p99_us", "max_us"}`; null if none.
pub fn percentiles(mut samples: Vec<u32>) -> Value {
    if samples.is_empty() {
        return json!(null);
    }
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    json!({"samples": samples.len(), "p50_us": at(0.5), "p99_us": at(0.99), "max_us": samples[samples.len() - 1]})
}

/// Polls `done` every 2 ms until it holds (true) or `limit` passes (false).
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_samples() {
        assert_eq!(percentiles(Vec::new()), json!(null));
        let figures = percentiles((1..=100).rev().collect());
        assert_eq!(
            figures,
            json!({"samples": 100, "p50_us": 51, "p99_us": 99, "max_us": 100})
        );
    }
}
