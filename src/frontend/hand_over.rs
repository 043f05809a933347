//! A planned hand-over (`restart NAME`): this process stops reading, lets what is in flight
//! settle, leaves the carry for the next process, and exits leaving every client connected.

use std::time::Duration;

use super::session::Sessions;

/// How long a hand-over waits for lines to be acknowledged and outboxes to be written.
const FLUSH: Duration = Duration::from_secs(2);
/// How long it then waits for its last packets to reach the supervisor.
const LAST_WORDS: Duration = Duration::from_secs(1);

/// The supervisor asked for a hand-over (`restart NAME`): read no client any more (what they send
/// waits in their sockets), wait until the kernel has every line read so far and every client has
/// its output, hand the supervisor what each reader left (half a line, lines waiting for their
/// turn: the carry, see [`crate::journal::carry`]), and exit without a goodbye. The kernel keeps our sessions for the next
/// process, which adopts the connections the supervisor holds and goes on where we stopped.
pub async fn exit(sessions: &Sessions) -> ! {
    sessions.stop_reading();
    let started = tokio::time::Instant::now();
    let deadline = started + FLUSH;
    let idle = |sessions: &Sessions| sessions.parking().is_none_or(|s| s.is_idle());
    while !(sessions.settled() && idle(sessions)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let flushed = sessions.settled();
    let carried = sessions.carry();
    if let Some(store) = sessions.parking() {
        store.carry(&carried);
        while !idle(sessions) && tokio::time::Instant::now() < deadline + LAST_WORDS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tracing::info!(
        clients = sessions.len(),
        flushed,
        taken_over = carried.len(),
        took = ?started.elapsed(),
        "handing the clients over to the next process"
    );
    // No destructor runs: the connections stay open (the supervisor holds them) and the kernel
    // hears no goodbye.
    std::process::exit(0)
}
