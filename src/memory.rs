//! Giving memory back after a burst.
//!
//! A login storm to thousands of users queues millions of small messages for a moment; glibc's
//! malloc keeps the freed pages, so a server that went through one keeps the peak as its RSS
//! (about 10 KiB per connection after 20,000 logins). `malloc_trim` hands free pages back to
//! the system; it runs off the async threads, a few seconds apart, only on glibc.

use std::time::Duration;

/// How often free memory is handed back.
const EVERY: Duration = Duration::from_secs(2);

/// Runs forever, trimming the heap every [`EVERY`].
pub async fn trim_when_idle() {
    loop {
        tokio::time::sleep(EVERY).await;
        let _ = tokio::task::spawn_blocking(crate::sys::trim_heap).await;
    }
}
