//! The supervisor's own heartbeat ([`Pulse`]): a task ticks it, and a child's watchdog asks it
//! whether the supervisor itself was paused before taking the child for hung.

use std::sync::OnceLock;

use parking_lot::Mutex;

use tokio::time::{Instant, MissedTickBehavior};

use super::watchdog::{PULSE, Pulse};

static STATE: OnceLock<Mutex<Pulse>> = OnceLock::new();

/// Starts the ticking (the first call; later ones do nothing).
pub fn start() {
    if STATE.set(Mutex::new(Pulse::new(Instant::now()))).is_ok() {
        tokio::spawn(async {
            let mut ticks = tokio::time::interval(PULSE);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Some(state) = STATE.get() {
                    state.lock().tick(Instant::now());
                }
            }
        });
    }
}

/// Whether the supervisor missed time after `since` (see [`Pulse::missed_since`]); false before
/// [`start`].
pub fn missed_since(since: Instant, now: Instant) -> bool {
    STATE.get().is_some_and(|state| state.lock().missed_since(since, now))
}
