//! The `serve` command line, in one place: the supervisor builds it from a `[[server]]` table
//! ([`ServeArgs::for_server`], [`ServeArgs::to_args`]) and the frontend parses it back (the same
//! clap definition), so that a key of servers.toml cannot reach the child under another name.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Limits, Options, client};
use crate::config::Kind;
use crate::config::{self, Server};

/// `chat-supervisor serve …`: one frontend attached to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServeArgs {
    /// This server's name, as in servers.toml.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub kind: Kind,
    /// The kernel's Unix socket.
    #[arg(long)]
    pub kernel: PathBuf,
    /// Address to bind when no socket is inherited (LISTEN_FDS).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// ANSI colours on telnet.
    #[arg(long, default_value_t = config::DEFAULT_COLOR, action = clap::ArgAction::Set)]
    pub color: bool,
    #[arg(long, default_value_t = config::DEFAULT_MAX_LINE)]
    pub max_line: usize,
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Lines a second per client after the burst; 0: unlimited.
    #[arg(long, default_value_t = config::DEFAULT_INPUT_RATE)]
    pub input_rate: u32,
    #[arg(long, default_value_t = config::DEFAULT_INPUT_BURST)]
    pub input_burst: u32,
    /// Seconds a client's socket may take no byte while output waits.
    #[arg(long, default_value_t = config::DEFAULT_SEND_TIMEOUT.as_secs())]
    pub send_timeout: u64,
    /// Seconds an HTTP request head may take (ws).
    #[arg(long, default_value_t = config::DEFAULT_HANDSHAKE_TIMEOUT.as_secs())]
    pub handshake_timeout: u64,
    /// Host names served besides the bound address (ws).
    #[arg(long, value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// The line each client is greeted with; "" for none [default: a welcome naming this server
    /// and `help`].
    #[arg(long, value_parser = config::motd_arg)]
    pub motd: Option<String>,
    /// Seconds of silence after which a WebSocket client is pinged (tests shorten it).
    #[arg(long, hide = true, default_value_t = client::PING_INTERVAL.as_secs())]
    pub ping_interval: u64,
}

impl ServeArgs {
    /// The arguments of the frontend serving `server`, attached to the kernel at `kernel`; its
    /// socket is inherited, so there is no `listen`.
    pub fn for_server(server: &Server, kernel: &Path) -> Self {
        Self {
            name: server.name.clone(),
            kind: server.kind,
            kernel: kernel.to_path_buf(),
            listen: None,
            color: server.color,
            max_line: server.max_line,
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip,
            input_rate: server.input_rate,
            input_burst: server.input_burst,
            send_timeout: server.send_timeout.as_secs(),
            handshake_timeout: server.handshake_timeout.as_secs(),
            allowed_hosts: server.allowed_hosts.clone(),
            motd: Some(server.motd.clone()),
            ping_interval: client::PING_INTERVAL.as_secs(),
        }
    }

    /// The command line after `serve`, every field spelled as its `#[arg]` above.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut arg = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            args.push(format!("--{name}").into());
            args.push(value.as_ref().to_os_string());
        };
        arg("name", &self.name);
        arg("kind", &self.kind.as_str());
        arg("kernel", &self.kernel);
        if let Some(listen) = self.listen {
            arg("listen", &listen.to_string());
        }
        arg("color", &self.color.to_string());
        arg("max-line", &self.max_line.to_string());
        arg("max-connections", &self.max_connections.to_string());
        arg("max-connections-per-ip", &self.max_connections_per_ip.to_string());
        arg("input-rate", &self.input_rate.to_string());
        arg("input-burst", &self.input_burst.to_string());
        arg("send-timeout", &self.send_timeout.to_string());
        arg("handshake-timeout", &self.handshake_timeout.to_string());
        if !self.allowed_hosts.is_empty() {
            arg("allowed-hosts", &self.allowed_hosts.join(","));
        }
        arg("ping-interval", &self.ping_interval.to_string());
        if let Some(motd) = &self.motd {
            // One argument, so that a greeting starting with `-` is not taken for an option.
            args.push(format!("--motd={motd}").into());
        }
        args
    }

    /// Parses what follows `serve` (as `chat-supervisor serve` does).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, clap::Error> {
        use clap::{Args, FromArgMatches};
        let command = Self::augment_args(clap::Command::new("serve").no_binary_name(true));
        Self::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    /// What the frontend runs with (but its socket: see [`listen`](super::listen)); every limit
    /// at least 1.
    pub fn options(self) -> Options {
        let motd = self.motd.unwrap_or_else(|| config::default_motd(&self.name));
        Options {
            name: self.name,
            kind: self.kind,
            kernel: self.kernel,
            color: self.color,
            limits: Limits {
                max_line: self.max_line.max(1),
                max_connections: self.max_connections.max(1),
                max_connections_per_ip: self.max_connections_per_ip.max(1),
                input_rate: self.input_rate,
                input_burst: self.input_burst.max(1),
                send_timeout: Duration::from_secs(self.send_timeout.max(1)),
                handshake_timeout: Duration::from_secs(self.handshake_timeout.max(1)),
                ping_interval: Duration::from_secs(self.ping_interval.max(1)),
            },
            allowed_hosts: self.allowed_hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            motd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose every key differs from its default.
    fn unusual() -> Server {
        let text = "[[server]]\nname = \"w\"\nkind = \"ws\"\nhost = \"127.0.0.2\"\nport = 9\ncolor = false\n\
                    max_line = 7\nmax_connections = 8\nmax_connections_per_ip = 3\ninput_rate = 0\n\
                    input_burst = 2\nsend_timeout = 4\nhandshake_timeout = 5\n\
                    allowed_hosts = [\"a.org\", \"b.org\"]\nmotd = \"-hi there\"\nrestart = \"never\"\n";
        let config = config::parse(Path::new("servers.toml"), Path::new("/"), text).unwrap();
        config.servers[0].clone()
    }

    #[test]
    fn the_arguments_of_a_server_parse_back_to_themselves() {
        let server = unusual();
        let args = ServeArgs::for_server(&server, Path::new("/run/kernel.sock"));
        let parsed = ServeArgs::parse(args.to_args()).unwrap();
        assert_eq!(parsed, args);
        // And every key arrived in the options.
        let options = parsed.options();
        let limits = options.limits;
        assert_eq!(
            (options.name.as_str(), options.kind, options.color),
            ("w", Kind::Ws, false)
        );
        assert_eq!(options.kernel, Path::new("/run/kernel.sock"));
        assert_eq!(
            (limits.max_line, limits.max_connections, limits.max_connections_per_ip),
            (7, 8, 3)
        );
        assert_eq!((limits.input_rate, limits.input_burst), (0, 2));
        assert_eq!(
            (limits.send_timeout, limits.handshake_timeout),
            (Duration::from_secs(4), Duration::from_secs(5))
        );
        assert_eq!(options.allowed_hosts, ["a.org", "b.org"]);
        assert_eq!(options.motd, "-hi there");
    }

    #[test]
    fn defaults_and_a_listen_address_round_trip_too() {
        let text = "[[server]]\nname = \"t\"\nkind = \"tcp\"\nport = 0\n";
        let server = &config::parse(Path::new("s.toml"), Path::new("/"), text)
            .unwrap()
            .servers[0];
        let mut args = ServeArgs::for_server(server, Path::new("k.sock"));
        args.listen = Some("127.0.0.1:1234".parse().unwrap());
        assert_eq!(ServeArgs::parse(args.to_args()).unwrap(), args);
        // The by-hand form needs only what has no default.
        let by_hand = ServeArgs::parse(["--name", "t", "--kind", "tcp", "--kernel", "k.sock"].map(OsString::from));
        let mut expected = args;
        expected.listen = None;
        expected.motd = None;
        assert_eq!(by_hand.unwrap(), expected);
    }

    #[test]
    fn a_bad_kind_names_the_known_ones() {
        let err =
            ServeArgs::parse(["--name", "t", "--kind", "gopher", "--kernel", "k"].map(OsString::from)).unwrap_err();
        assert!(err.to_string().contains("use \"tcp\" or \"ws\""), "{err}");
    }
}
