//! What a frontend serves with: a `[[server]]` but for where it listens and how it is restarted.
//! One struct for the three places a server's key goes: servers.toml ([`Server`] holds it), the
//! `serve` command line (clap spells each field as a flag: `max_line` is `--max-line`) and the
//! frontend.

use std::convert::Infallible;
use std::num::ParseIntError;
use std::time::Duration;

use super::*;

/// What a frontend serves with.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Settings {
    /// This server's name, as in servers.toml.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub kind: Kind,
    /// ANSI colours on telnet.
    #[arg(long, default_value_t = DEFAULT_COLOR, action = clap::ArgAction::Set)]
    pub color: bool,
    #[command(flatten)]
    pub limits: Limits,
    /// Host names served besides the bound address (ws).
    #[arg(long, value_delimiter = ',', value_parser = lowercase)]
    pub allowed_hosts: Vec<String>,
    /// The line each client is greeted with as it connects (after `[INFO] - `); empty: none.
    /// Not read by clap: `serve --motd` has a default of its own, which names the server.
    #[arg(skip)]
    pub motd: String,
}

/// Per-server limits of PROTOCOL.md §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Longest input line in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE)]
    pub max_line: usize,
    /// Connections served at once; more are told `server full`.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections from one address at once; more are told `too many connections`.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Lines a second per client after the burst; 0: unlimited.
    #[arg(long, default_value_t = DEFAULT_INPUT_RATE)]
    pub input_rate: u32,
    /// Lines a client may send at once before `input_rate` applies.
    #[arg(long, default_value_t = DEFAULT_INPUT_BURST)]
    pub input_burst: u32,
    /// How long a client's socket may take no byte while output waits.
    #[arg(long, value_parser = seconds, default_value = "30")]
    #[arg(help = "Seconds a client's socket may take no byte while output waits")]
    pub send_timeout: Duration,
    /// How long an HTTP request head may take (ws).
    #[arg(long, value_parser = seconds, default_value = "10")]
    #[arg(help = "Seconds an HTTP request head may take (ws)")]
    pub handshake_timeout: Duration,
    /// A WebSocket client silent this long is pinged; silent twice this long, it is dropped. Not a
    /// servers.toml key: tests shorten it.
    #[arg(long, hide = true, value_parser = seconds, default_value = "30")]
    #[arg(help = "Seconds of silence after which a WebSocket client is pinged")]
    pub ping_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            input_rate: DEFAULT_INPUT_RATE,
            input_burst: DEFAULT_INPUT_BURST,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
        }
    }
}

impl Limits {
    /// Every limit (but `input_rate`, where 0 means none) at least 1: servers.toml refuses 0, the
    /// command line takes it for 1.
    pub fn at_least_one(self) -> Self {
        let second = Duration::from_secs(1);
        Self {
            max_line: self.max_line.max(1),
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            input_rate: self.input_rate,
            input_burst: self.input_burst.max(1),
            send_timeout: self.send_timeout.max(second),
            handshake_timeout: self.handshake_timeout.max(second),
            ping_interval: self.ping_interval.max(second),
        }
    }
}

/// A command-line value in whole seconds.
fn seconds(value: &str) -> Result<Duration, ParseIntError> {
    value.parse().map(Duration::from_secs)
}

/// Host names compare in lowercase.
fn lowercase(value: &str) -> Result<String, Infallible> {
    Ok(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> Limits {
        let command = Limits::augment_args(clap::Command::new("limits").no_binary_name(true));
        Limits::from_arg_matches(&command.try_get_matches_from(args).unwrap()).unwrap()
    }

    #[test]
    fn the_command_lines_defaults_are_the_configs() {
        assert_eq!(parse(&[]), Limits::default());
    }

    #[test]
    fn durations_are_in_seconds_and_zero_is_taken_for_one() {
        let limits = parse(&["--send-timeout", "0", "--ping-interval", "2", "--max-line", "0"]).at_least_one();
        assert_eq!(limits.send_timeout, Duration::from_secs(1));
        assert_eq!(limits.ping_interval, Duration::from_secs(2));
        assert_eq!(limits.max_line, 1);
    }
}
