//! The kernel's clock: `HH:MM:SS` local time for chat lines, and microseconds for login order.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::chat::Now;

/// Wall-clock time for events, formatted once per second rather than once per message.
#[derive(Default)]
pub struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    pub fn now(&mut self) -> Now<'_> {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let second = micros / 1_000_000;
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = chrono::Local::now().format("%H:%M:%S").to_string();
        }
        Now {
            time: &self.text,
            micros,
        }
    }
}
