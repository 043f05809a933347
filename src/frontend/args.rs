//! The `serve` command line, in one place: the supervisor builds it from a `[[server]]`
//! ([`ServeArgs::for_server`], [`ServeArgs::to_args`]) and the frontend parses it back with the
//! same clap definition, [`Settings`]'s own, so that a key of servers.toml reaches the child under
//! its own name.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::Options;
use crate::config::{self, Limits, Server, Settings};

/// `chat-supervisor serve …`: one frontend attached to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// What it serves with.
    pub settings: Settings,
    /// The kernel's Unix socket.
    pub kernel: PathBuf,
    /// Address to bind when no socket is inherited (LISTEN_FDS).
    pub listen: Option<SocketAddr>,
}

/// The command line as clap reads it: [`ServeArgs`], but for the greeting, whose default names the
/// server.
#[derive(clap::Args)]
struct Flags {
    #[command(flatten)]
    settings: Settings,
    /// The kernel's Unix socket.
    #[arg(long)]
    kernel: PathBuf,
    /// Address to bind when no socket is inherited (LISTEN_FDS).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The line each client is greeted with; "" for none [default: a welcome naming this server
    /// and `help`].
    #[arg(long, value_parser = config::motd_arg)]
    motd: Option<String>,
}

impl From<Flags> for ServeArgs {
    fn from(flags: Flags) -> Self {
        let mut settings = flags.settings;
        settings.motd = flags.motd.unwrap_or_else(|| config::default_motd(&settings.name));
        Self {
            settings,
            kernel: flags.kernel,
            listen: flags.listen,
        }
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Flags::from_arg_matches(matches).map(Self::from)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        Flags::augment_args(command)
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Flags::augment_args_for_update(command)
    }
}

impl ServeArgs {
    /// The arguments of the frontend serving `server`, attached to the kernel at `kernel`; its
    /// socket is inherited, so there is no `listen`.
    pub fn for_server(server: &Server, kernel: &Path) -> Self {
        Self {
            settings: server.settings.clone(),
            kernel: kernel.to_path_buf(),
            listen: None,
        }
    }

    /// The command line after `serve`, every field spelled as clap reads it.
    pub fn to_args(&self) -> Vec<OsString> {
        // Whole: a field added to either is a compile error here until it is spelled.
        let Settings {
            name,
            kind,
            color,
            limits,
            allowed_hosts,
            motd,
        } = &self.settings;
        let Limits {
            max_line,
            max_connections,
            max_connections_per_ip,
            input_rate,
            input_burst,
            send_timeout,
            handshake_timeout,
            ping_interval,
        } = limits;
        let mut args: Vec<OsString> = Vec::new();
        let mut arg = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            args.push(format!("--{name}").into());
            args.push(value.as_ref().to_os_string());
        };
        arg("name", name);
        arg("kind", &kind.as_str());
        arg("kernel", &self.kernel);
        if let Some(listen) = self.listen {
            arg("listen", &listen.to_string());
        }
        arg("color", &color.to_string());
        arg("max-line", &max_line.to_string());
        arg("max-connections", &max_connections.to_string());
        arg("max-connections-per-ip", &max_connections_per_ip.to_string());
        arg("input-rate", &input_rate.to_string());
        arg("input-burst", &input_burst.to_string());
        arg("send-timeout", &send_timeout.as_secs().to_string());
        arg("handshake-timeout", &handshake_timeout.as_secs().to_string());
        if !allowed_hosts.is_empty() {
            arg("allowed-hosts", &allowed_hosts.join(","));
        }
        arg("ping-interval", &ping_interval.as_secs().to_string());
        // One argument, so that a greeting starting with `-` is not taken for an option.
        args.push(format!("--motd={motd}").into());
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
        let mut settings = self.settings;
        settings.limits = settings.limits.at_least_one();
        Options {
            settings,
            kernel: self.kernel,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Kind;

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
        let settings = &options.settings;
        let limits = settings.limits;
        assert_eq!(
            (settings.name.as_str(), settings.kind, settings.color),
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
        assert_eq!(settings.allowed_hosts, ["a.org", "b.org"]);
        assert_eq!(settings.motd, "-hi there");
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
        let by_hand = by_hand.unwrap();
        assert_eq!(by_hand, expected);
        // Its greeting, by default, names the server.
        assert_eq!(
            by_hand.settings.motd,
            "Welcome to the t chat. Type help for the commands."
        );
        let quiet =
            ServeArgs::parse(["--name", "t", "--kind", "tcp", "--kernel", "k", "--motd", ""].map(OsString::from));
        assert_eq!(quiet.unwrap().settings.motd, "");
    }

    #[test]
    fn a_bad_kind_names_the_known_ones() {
        let err =
            ServeArgs::parse(["--name", "t", "--kind", "gopher", "--kernel", "k"].map(OsString::from)).unwrap_err();
        assert!(err.to_string().contains("use \"tcp\" or \"ws\""), "{err}");
    }
}
