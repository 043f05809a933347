//! `servers.toml`: the schema, its defaults, and strict validation that reports every problem at
//! once, each with file, line and key.
//!
//! The file is walked as a spanned TOML table rather than deserialized, so that an unknown key, a
//! wrong type and a duplicate name are all reported in one run instead of one per run.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::frontend::Kind;

/// A validated configuration. Paths are absolute (relative ones are taken from the file's folder).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub log_dir: PathBuf,
    pub run_dir: PathBuf,
    /// Dated log files kept after rotation, per log, besides the live one (at least 1: a restart
    /// counts the day's file among them, see `supervisor::logfile`).
    pub log_keep: usize,
    /// A child that sends no `WATCHDOG=1` for this long is killed and restarted; `None`: never.
    pub watchdog: Option<Duration>,
    pub servers: Vec<Server>,
}

/// One `[[server]]`: a frontend process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub kind: Kind,
    pub host: IpAddr,
    /// 0 lets the OS choose.
    pub port: u16,
    pub color: bool,
    pub max_line: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Lines per second a client may send (a token bucket); 0: unlimited.
    pub input_rate: u32,
    /// Lines a client may send at once before `input_rate` applies.
    pub input_burst: u32,
    /// How long a client's socket may accept no byte while output waits.
    pub send_timeout: Duration,
    /// ws only: how long an HTTP request or WebSocket upgrade may take.
    pub handshake_timeout: Duration,
    /// ws only: `Host` names served besides the bound address (lowercase).
    pub allowed_hosts: Vec<String>,
    /// The line each client is greeted with as it connects (after `[INFO] - `); empty: none.
    pub motd: String,
    pub restart: Restart,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// When a server's process is restarted after it exits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Whatever the exit status (the default).
    Always,
    /// Only after a non-zero exit or a signal.
    OnFailure,
    Never,
}

crate::spelled!(Restart, "restart policy", {
    Restart::Always => "always",
    Restart::OnFailure => "on-failure",
    Restart::Never => "never",
});

pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const DEFAULT_COLOR: bool = true;
pub const DEFAULT_MAX_LINE: usize = 4096;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
pub const DEFAULT_INPUT_RATE: u32 = 20;
pub const DEFAULT_INPUT_BURST: u32 = 40;
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(5);
pub const DEFAULT_LOG_DIR: &str = "logs";
pub const DEFAULT_RUN_DIR: &str = "run";
pub const DEFAULT_LOG_KEEP: usize = 7;
/// Longest `motd`, in characters.
pub const MAX_MOTD: usize = 200;
/// Problems shown of an invalid file; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 50;
/// Names the supervisor's own files use, and `all` (every server, on the command line), so no
/// server may take them.
const RESERVED: [&str; 3] = ["kernel", "supervisor", "all"];

/// The greeting of a server whose config sets no `motd`.
pub fn default_motd(name: &str) -> String {
    format!("Welcome to the {name} chat. Type help for the commands.")
}

/// Why `motd` cannot be a greeting, if it cannot: it must fit on one line of a terminal and show
/// as it reads, so no line break, no control or invisible character, at most [`MAX_MOTD`]
/// characters.
pub fn motd_problem(motd: &str) -> Option<String> {
    let length = motd.chars().count();
    if motd.contains(['\n', '\r']) {
        Some("must be one line".into())
    } else if crate::chat::command::strip_controls(motd) != motd {
        Some("must have no control or invisible characters".into())
    } else if length > MAX_MOTD {
        Some(format!("must be at most {MAX_MOTD} characters, not {length}"))
    } else {
        None
    }
}

/// [`motd_problem`] as a command-line value parser.
pub fn motd_arg(motd: &str) -> Result<String, String> {
    motd_problem(motd).map_or_else(|| Ok(motd.to_string()), Err)
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    /// Where in the file, e.g. `server[2].port`.
    pub key: String,
    pub message: String,
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(SHOWN_PROBLEMS) {
            write!(f, "\n  {}:{}: {}: {}", self.file.display(), p.line, p.key, p.message)?;
        }
        if n > SHOWN_PROBLEMS {
            write!(f, "\n  … and {} more", n - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Reads and validates `path`.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let (text, base) = read(path)?;
    Ok(parse(path, &base, &text)?)
}

/// What can be had of a file that may be invalid, for `logs` and for logging why `up` failed: its
/// `[supervisor]` settings and its valid servers. An error (the same as [`load`]'s) if it cannot
/// be read, is not TOML, or `[supervisor]` itself is at fault.
pub fn load_partial(path: &Path) -> anyhow::Result<Config> {
    let (text, base) = read(path)?;
    let (config, problems) = check(path, &base, &text);
    let settings_sound = problems
        .iter()
        .all(|p| p.key != "(syntax)" && p.key != "supervisor" && !p.key.starts_with("supervisor."));
    if settings_sound {
        Ok(config)
    } else {
        Err(parse(path, &base, &text).expect_err("has problems").into())
    }
}

/// The file's text and the folder its relative paths start from.
fn read(path: &Path) -> anyhow::Result<(String, PathBuf)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((text, std::path::absolute(base)?))
}

/// Validates `text` as the contents of `file`; relative paths are taken from `base`.
pub fn parse(file: &Path, base: &Path, text: &str) -> Result<Config, Invalid> {
    let (config, problems) = check(file, base, text);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Invalid {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// The config as far as it is valid, and every problem, in line order.
fn check(file: &Path, base: &Path, text: &str) -> (Config, Vec<Problem>) {
    let mut check = Check {
        text,
        lines: text.match_indices('\n').map(|(at, _)| at).collect(),
        problems: Vec::new(),
        names: HashSet::new(),
    };
    let config = check.file(file, base);
    check.problems.sort_by_key(|p| p.line);
    (config, check.problems)
}

struct Check<'t> {
    text: &'t str,
    /// Where each line ends, so that a problem's line is a binary search, not a scan: a file of
    /// 100,000 unknown keys is checked in linear time.
    lines: Vec<usize>,
    problems: Vec<Problem>,
    /// Server names seen so far, to refuse a second use.
    names: HashSet<String>,
}

type Table<'i> = DeTable<'i>;

impl Check<'_> {
    fn problem(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let line = self.lines.partition_point(|&end| end < span.start) + 1;
        self.problems.push(Problem {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    fn file(&mut self, file: &Path, base: &Path) -> Config {
        let mut config = Config {
            path: file.to_path_buf(),
            log_dir: base.join(DEFAULT_LOG_DIR),
            run_dir: base.join(DEFAULT_RUN_DIR),
            log_keep: DEFAULT_LOG_KEEP,
            watchdog: Some(DEFAULT_WATCHDOG),
            servers: Vec::new(),
        };
        let root = match DeTable::parse(self.text) {
            Ok(root) => root,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                self.problem(span, "(syntax)", e.message().to_string());
                return config;
            }
        };
        // Each valid server's place among the [[server]] tables, for messages.
        let mut numbers = Vec::new();
        for (key, value) in root.get_ref() {
            match key.get_ref().as_ref() {
                "supervisor" => match value.get_ref() {
                    DeValue::Table(table) => self.supervisor(table, base, &mut config),
                    _ => self.problem(value.span(), "supervisor", "must be a table: [supervisor]"),
                },
                "server" => match value.get_ref() {
                    DeValue::Array(servers) => {
                        for (i, server) in servers.iter().enumerate() {
                            let at = format!("server[{}]", i + 1);
                            match server.get_ref() {
                                DeValue::Table(table) => {
                                    if let Some(s) = self.server(table, server.span(), &at) {
                                        config.servers.push(s);
                                        numbers.push(i + 1);
                                    }
                                }
                                _ => self.problem(server.span(), at, "must be a table: [[server]]"),
                            }
                        }
                    }
                    _ => self.problem(value.span(), "server", "must be an array of tables: [[server]]"),
                },
                other => self.problem(key.span(), other, "unknown key (expected [supervisor] or [[server]])"),
            }
        }
        self.unique(&root, &config.servers, &numbers);
        config
    }

    fn supervisor(&mut self, table: &Table<'_>, base: &Path, config: &mut Config) {
        let mut fields = Fields::new(table, "supervisor");
        if let Some(dir) = fields.string(self, "log_dir") {
            config.log_dir = base.join(dir);
        }
        if let Some(dir) = fields.string(self, "run_dir") {
            config.run_dir = base.join(dir);
        }
        if let Some(keep) = fields.integer(self, "log_keep", 1..=3650) {
            config.log_keep = keep as usize;
        }
        if let Some(seconds) = fields.integer(self, "watchdog", 0..=3600) {
            config.watchdog = (seconds > 0).then(|| Duration::from_secs(seconds as u64));
        }
        fields.finish(self, "log_dir, run_dir, log_keep, watchdog");
    }

    fn server(&mut self, table: &Table<'_>, span: Range<usize>, at: &str) -> Option<Server> {
        let mut fields = Fields::new(table, at);
        let name = fields.string(self, "name");
        if let Some((name, span)) = name.as_ref().zip(fields.span("name")) {
            let valid = !name.is_empty()
                && name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !valid {
                self.problem(span, format!("{at}.name"), "must be 1 to 32 of a-z, 0-9, _ and -");
            } else if RESERVED.contains(&name.as_str()) {
                self.problem(
                    span,
                    format!("{at}.name"),
                    format!("`{name}` is reserved for the supervisor's own use"),
                );
            } else if !self.names.insert(name.clone()) {
                self.problem(span, format!("{at}.name"), format!("`{name}` is used twice"));
            }
        }
        let kind = fields
            .string(self, "kind")
            .and_then(|kind| self.word(&fields, "kind", &kind, &span, at));
        let host = fields
            .string(self, "host")
            .map_or(Some(DEFAULT_HOST), |host| match host.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    let span = fields.span("host").unwrap_or(span.clone());
                    self.problem(span, format!("{at}.host"), format!("`{host}` is not an IP address"));
                    None
                }
            });
        let port = fields.integer(self, "port", 0..=65535).map(|p| p as u16);
        let color = fields.boolean(self, "color").unwrap_or(DEFAULT_COLOR);
        let max_line = fields
            .integer(self, "max_line", 1..=1 << 20)
            .map_or(DEFAULT_MAX_LINE, |n| n as usize);
        let max_connections = fields
            .integer(self, "max_connections", 1..=1_000_000)
            .map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize);
        let max_connections_per_ip = fields
            .integer(self, "max_connections_per_ip", 1..=1_000_000)
            .map_or(DEFAULT_MAX_CONNECTIONS_PER_IP, |n| n as usize);
        let input_rate = fields
            .integer(self, "input_rate", 0..=1_000_000)
            .map_or(DEFAULT_INPUT_RATE, |n| n as u32);
        let input_burst = fields
            .integer(self, "input_burst", 1..=1_000_000)
            .map_or(DEFAULT_INPUT_BURST, |n| n as u32);
        let send_timeout = fields
            .integer(self, "send_timeout", 1..=3600)
            .map_or(DEFAULT_SEND_TIMEOUT, |n| Duration::from_secs(n as u64));
        // Keys of the web server only.
        let handshake_timeout = fields
            .integer(self, "handshake_timeout", 1..=3600)
            .map_or(DEFAULT_HANDSHAKE_TIMEOUT, |n| Duration::from_secs(n as u64));
        let allowed_hosts = fields.hosts(self, "allowed_hosts").unwrap_or_default();
        let motd = fields.string(self, "motd").filter(|motd| match motd_problem(motd) {
            Some(problem) => {
                let span = fields.span("motd").unwrap_or(span.clone());
                self.problem(span, format!("{at}.motd"), problem);
                false
            }
            None => true,
        });
        if kind == Some(Kind::Tcp) {
            for key in ["handshake_timeout", "allowed_hosts"] {
                if let Some(span) = fields.span(key) {
                    self.problem(span, format!("{at}.{key}"), "applies to kind = \"ws\" only");
                }
            }
        }
        let restart = match fields.string(self, "restart") {
            Some(restart) => self.word(&fields, "restart", &restart, &span, at),
            None => Some(Restart::Always),
        };
        for required in ["name", "kind", "port"] {
            if fields.span(required).is_none() {
                self.problem(span.clone(), format!("{at}.{required}"), "missing (required)");
            }
        }
        fields.finish(
            self,
            "name, kind, host, port, color, max_line, max_connections, max_connections_per_ip, \
             input_rate, input_burst, send_timeout, handshake_timeout, allowed_hosts, motd, restart",
        );
        let name = name?;
        Some(Server {
            motd: motd.unwrap_or_else(|| default_motd(&name)),
            name,
            kind: kind?,
            host: host?,
            port: port?,
            color,
            max_line,
            max_connections,
            max_connections_per_ip,
            input_rate,
            input_burst,
            send_timeout,
            handshake_timeout,
            allowed_hosts,
            restart: restart?,
        })
    }

    /// A word of a few spellings ([`Kind`], [`Restart`]), or a problem naming them.
    fn word<T: std::str::FromStr<Err = crate::spelling::Unknown>>(
        &mut self,
        fields: &Fields<'_, '_>,
        key: &str,
        word: &str,
        table: &Range<usize>,
        at: &str,
    ) -> Option<T> {
        match word.parse() {
            Ok(value) => Some(value),
            Err(unknown) => {
                let span = fields.span(key).unwrap_or(table.clone());
                self.problem(span, format!("{at}.{key}"), unknown.to_string());
                None
            }
        }
    }

    /// Addresses are unique, unless the port is 0.
    fn unique(&mut self, root: &Spanned<Table<'_>>, servers: &[Server], numbers: &[usize]) {
        let Some(DeValue::Array(tables)) = root.get_ref().get("server").map(|v| v.get_ref()) else {
            return;
        };
        let mut first: HashMap<SocketAddr, &str> = HashMap::new();
        for (server, &number) in servers.iter().zip(numbers) {
            if server.port == 0 {
                continue;
            }
            if let Some(other) = first.get(&server.addr()) {
                let span = tables[number - 1]
                    .get_ref()
                    .as_table()
                    .and_then(|t| t.get("port"))
                    .map_or(0..0, |v| v.span());
                self.problem(
                    span,
                    format!("server[{number}].port"),
                    format!("{} is also the address of `{other}`", server.addr()),
                );
            } else {
                first.insert(server.addr(), &server.name);
            }
        }
    }
}

/// Reads typed fields from one table, remembering which keys were known.
struct Fields<'a, 'i> {
    table: &'a Table<'i>,
    at: &'a str,
    known: Vec<&'static str>,
}

impl<'a, 'i> Fields<'a, 'i> {
    fn new(table: &'a Table<'i>, at: &'a str) -> Self {
        Self {
            table,
            at,
            known: Vec::new(),
        }
    }

    fn value(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.known.push(key);
        self.table.get(key)
    }

    fn span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get(key).map(|v| v.span())
    }

    fn wrong(&self, check: &mut Check<'_>, key: &str, value: &Spanned<DeValue<'_>>, expected: &str) {
        let found = value.get_ref().type_str();
        check.problem(
            value.span(),
            format!("{}.{key}", self.at),
            format!("must be {expected}, not {found}"),
        );
    }

    fn string(&mut self, check: &mut Check<'_>, key: &'static str) -> Option<String> {
        let value = self.value(key)?;
        match value.get_ref().as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(check, key, value, "a string");
                None
            }
        }
    }

    /// A list of host names (letters, digits, `-` and `.`), lowercased.
    fn hosts(&mut self, check: &mut Check<'_>, key: &'static str) -> Option<Vec<String>> {
        let value = self.value(key)?;
        let Some(items) = value.get_ref().as_array() else {
            self.wrong(check, key, value, "a list of host names");
            return None;
        };
        let mut hosts = Vec::new();
        for item in items {
            let valid = item.get_ref().as_str().filter(|h| {
                !h.is_empty()
                    && h.len() <= 253
                    && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            });
            match valid {
                Some(host) => hosts.push(host.to_ascii_lowercase()),
                None => check.problem(
                    item.span(),
                    format!("{}.{key}", self.at),
                    "each entry must be a host name such as \"chat.example.org\" (no port, no scheme)",
                ),
            }
        }
        Some(hosts)
    }

    fn boolean(&mut self, check: &mut Check<'_>, key: &'static str) -> Option<bool> {
        let value = self.value(key)?;
        let b = value.get_ref().as_bool();
        if b.is_none() {
            self.wrong(check, key, value, "true or false");
        }
        b
    }

    fn integer(
        &mut self,
        check: &mut Check<'_>,
        key: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let value = self.value(key)?;
        let Some(n) = value.get_ref().as_integer() else {
            self.wrong(check, key, value, "an integer");
            return None;
        };
        match i64::from_str_radix(n.as_str(), n.radix()) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                check.problem(
                    value.span(),
                    format!("{}.{key}", self.at),
                    format!("must be from {} to {}", range.start(), range.end()),
                );
                None
            }
        }
    }

    fn finish(self, check: &mut Check<'_>, expected: &str) {
        for (key, _) in self.table {
            if !self.known.contains(&key.get_ref().as_ref()) {
                check.problem(
                    key.span(),
                    format!("{}.{}", self.at, key.get_ref()),
                    format!("unknown key (known: {expected})"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(Path::new("servers.toml"), Path::new("/base"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(text: &str) -> Vec<(usize, String, String)> {
        let invalid = parse(Path::new("servers.toml"), Path::new("/base"), text).expect_err("invalid");
        invalid
            .problems
            .into_iter()
            .map(|p| (p.line, p.key, p.message))
            .collect()
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let config = parse_ok(include_str!("../servers.toml"));
        let names: Vec<_> = config
            .servers
            .iter()
            .map(|s| (s.name.as_str(), s.kind, s.port))
            .collect();
        assert_eq!(
            names,
            [
                ("asyncio", Kind::Tcp, 10000),
                ("twisted", Kind::Tcp, 1234),
                ("tornado", Kind::Tcp, 8000),
                ("web", Kind::Ws, 8080)
            ]
        );
        assert_eq!(config.log_dir, Path::new("/base/logs"));
        assert_eq!(config.run_dir, Path::new("/base/run"));
    }

    #[test]
    fn defaults() {
        let config = parse_ok("[[server]]\nname = \"a\"\nkind = \"tcp\"\nport = 0\n");
        let s = &config.servers[0];
        assert_eq!(s.host, DEFAULT_HOST);
        assert!(s.color);
        assert_eq!((s.max_line, s.max_connections), (4096, 10_000));
        assert_eq!(s.restart, Restart::Always);
        assert_eq!(config.log_keep, DEFAULT_LOG_KEEP);
        assert_eq!((s.max_connections_per_ip, s.input_rate, s.input_burst), (64, 20, 40));
        assert_eq!(s.send_timeout, Duration::from_secs(30));
        assert_eq!(s.handshake_timeout, Duration::from_secs(10));
        assert!(s.allowed_hosts.is_empty());
        assert_eq!(s.motd, "Welcome to the a chat. Type help for the commands.");
        assert_eq!(config.watchdog, Some(Duration::from_secs(5)));
    }

    #[test]
    fn motd_set_or_empty() {
        let config = parse_ok(
            "[[server]]\nname = \"t\"\nkind = \"tcp\"\nport = 0\nmotd = \"Hi, ☃ there! Be nice.\"\n\
             [[server]]\nname = \"w\"\nkind = \"ws\"\nport = 0\nmotd = \"\"\n",
        );
        assert_eq!(config.servers[0].motd, "Hi, ☃ there! Be nice.");
        assert_eq!(config.servers[1].motd, "", "empty: no greeting");
        let longest = "é".repeat(MAX_MOTD);
        let config = parse_ok(&format!(
            "[[server]]\nname = \"t\"\nkind = \"tcp\"\nport = 0\nmotd = \"{longest}\"\n"
        ));
        assert_eq!(config.servers[0].motd, longest);
    }

    #[test]
    fn a_motd_that_is_not_one_plain_line_is_refused() {
        let cases = [
            (r#""two\nlines""#, "must be one line"),
            (r#""a\rb""#, "must be one line"),
            ("'''\nfirst\nsecond'''", "must be one line"),
            (r#""\u001b[31mred""#, "must have no control or invisible characters"),
            (r#""tab\there""#, "must have no control or invisible characters"),
            (r#""abc\u202Eevil""#, "must have no control or invisible characters"),
            (r#""zero\u200Bwidth""#, "must have no control or invisible characters"),
            ("true", "must be a string, not boolean"),
        ];
        for (value, message) in cases {
            let text = format!("[[server]]\nname = \"a\"\nkind = \"tcp\"\nport = 0\nmotd = {value}\n");
            assert_eq!(
                problems(&text),
                [(5, "server[1].motd".to_string(), message.to_string())],
                "{value}"
            );
        }
        let long = format!(
            "[[server]]\nname = \"a\"\nkind = \"tcp\"\nport = 0\nmotd = \"{}\"\n",
            "x".repeat(MAX_MOTD + 1)
        );
        assert_eq!(
            problems(&long),
            [(
                5,
                "server[1].motd".into(),
                "must be at most 200 characters, not 201".into()
            )]
        );
        assert_eq!(motd_arg("ok"), Ok("ok".into()));
        assert_eq!(motd_arg("a\nb"), Err("must be one line".into()));
    }

    #[test]
    fn limits_and_the_watchdog() {
        let config = parse_ok(
            "[supervisor]\nwatchdog = 0\n[[server]]\nname = \"w\"\nkind = \"ws\"\nport = 0\n\
             input_rate = 0\ninput_burst = 5\nsend_timeout = 3\nmax_connections_per_ip = 2\n\
             handshake_timeout = 4\nallowed_hosts = [\"Chat.Example.org\", \"localhost\"]\n",
        );
        assert_eq!(config.watchdog, None);
        let s = &config.servers[0];
        assert_eq!((s.input_rate, s.input_burst, s.max_connections_per_ip), (0, 5, 2));
        assert_eq!((s.send_timeout.as_secs(), s.handshake_timeout.as_secs()), (3, 4));
        assert_eq!(s.allowed_hosts, ["chat.example.org", "localhost"]);
    }

    #[test]
    fn web_keys_on_a_telnet_server_and_bad_hosts_are_refused() {
        let got = problems(
            "[[server]]\nname = \"t\"\nkind = \"tcp\"\nport = 0\nhandshake_timeout = 5\nallowed_hosts = []\n\
             [[server]]\nname = \"w\"\nkind = \"ws\"\nport = 0\nallowed_hosts = [\"http://x\", 3, \"ok.org\"]\n\
             input_burst = 0\n",
        );
        let keys: Vec<_> = got.iter().map(|(line, key, _)| (*line, key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (5, "server[1].handshake_timeout"),
                (6, "server[1].allowed_hosts"),
                (11, "server[2].allowed_hosts"),
                (11, "server[2].allowed_hosts"),
                (12, "server[2].input_burst"),
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn a_hundred_thousand_problems_take_linear_time_and_show_fifty() {
        let mut text = String::from("[[server]]\nname = \"a\"\nkind = \"tcp\"\nport = 0\n");
        for i in 0..100_000 {
            text.push_str(&format!("k{i} = 1\n"));
        }
        let started = std::time::Instant::now();
        let err = parse(Path::new("s.toml"), Path::new("/"), &text).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.problems.len(), 100_000);
        assert_eq!(err.problems[99_999].line, 100_004);
        assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
        let shown = err.to_string();
        assert_eq!(shown.lines().count(), 1 + SHOWN_PROBLEMS + 1, "{shown:.300}");
        assert!(shown.ends_with("… and 99950 more"), "{}", &shown[shown.len() - 60..]);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_line_and_key() {
        let text = r#"
[supervisor]
log_dri = "x"

[[server]]
name = "a"
kind = "telnet"
port = 70000
colour = false

[[server]]
name = "a"
kind = "ws"
host = "localhost"
port = "80"

[[server]]
kind = "tcp"
port = 1
restart = "sometimes"

[other]
"#;
        let got = problems(text);
        let expected = [
            (
                3,
                "supervisor.log_dri",
                "unknown key (known: log_dir, run_dir, log_keep, watchdog)",
            ),
            (7, "server[1].kind", "`telnet` is not a kind: use \"tcp\" or \"ws\""),
            (8, "server[1].port", "must be from 0 to 65535"),
            (9, "server[1].colour", "unknown key"),
            (12, "server[2].name", "`a` is used twice"),
            (14, "server[2].host", "`localhost` is not an IP address"),
            (15, "server[2].port", "must be an integer, not string"),
            (17, "server[3].name", "missing (required)"),
            (20, "server[3].restart", "`sometimes`"),
            (22, "other", "unknown key"),
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for ((line, key, message), (eline, ekey, emessage)) in got.iter().zip(expected) {
            assert_eq!((*line, key.as_str()), (eline, ekey), "{got:#?}");
            assert!(message.starts_with(emessage), "{message} / {emessage}");
        }
    }

    #[test]
    fn duplicate_addresses_but_not_port_zero() {
        let text = "[[server]]\nname = \"a\"\nkind = \"tcp\"\nport = 5\n[[server]]\nname = \"b\"\nkind = \"ws\"\nport = 5\n\
                    [[server]]\nname = \"c\"\nkind = \"tcp\"\nport = 0\n[[server]]\nname = \"d\"\nkind = \"tcp\"\nport = 0\n";
        assert_eq!(
            problems(text),
            [(
                8,
                "server[2].port".into(),
                "127.0.0.1:5 is also the address of `a`".into()
            )]
        );
    }

    #[test]
    fn a_duplicate_address_names_its_own_table() {
        let text = "[[server]]\nname = \"bad\"\nkind = \"x\"\nport = 1\n\
                    [[server]]\nname = \"a\"\nkind = \"tcp\"\nport = 5\n\
                    [[server]]\nname = \"b\"\nkind = \"tcp\"\nport = 5\n";
        let got = problems(text);
        assert_eq!(got[1].1, "server[3].port", "{got:?}");
    }

    #[test]
    fn names_are_checked() {
        for bad in ["\"A\"", "\"a b\"", "\"\"", "\"kernel\"", "\"supervisor\"", "\"all\""] {
            let text = format!("[[server]]\nname = {bad}\nkind = \"tcp\"\nport = 0\n");
            let got = problems(&text);
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert_eq!(got[0].1, "server[1].name");
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let got = problems("[[server]]\nname = \"a\nkind = \"tcp\"\n");
        assert_eq!(got[0].0, 2, "{got:?}");
    }

    #[test]
    fn display_names_file_line_and_key() {
        let err = parse(
            Path::new("conf/servers.toml"),
            Path::new("/"),
            "[[server]]\nname = 1\nkind = \"tcp\"\nport = 0\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conf/servers.toml has 1 problem:\n  conf/servers.toml:2: server[1].name: must be a string, not integer"
        );
    }

    #[test]
    fn a_partial_load_keeps_the_settings_of_a_file_whose_servers_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("servers.toml");
        std::fs::write(
            &path,
            "[supervisor]\nlog_dir = \"elsewhere\"\nlog_keep = 3\n\
             [[server]]\nname = \"ok\"\nkind = \"tcp\"\nport = 0\n\
             [[server]]\nname = \"bad\"\nkind = \"gopher\"\nport = 0\n",
        )
        .unwrap();
        assert!(load(&path).is_err());
        let partial = load_partial(&path).unwrap();
        assert_eq!(partial.log_dir, dir.path().join("elsewhere"));
        assert_eq!(partial.log_keep, 3);
        let names: Vec<_> = partial.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok"]);
        // A fault in [supervisor] itself, or in the syntax, leaves nothing to trust.
        for bad in [
            "[supervisor]\nlog_dir = 7\n",
            "[supervisor]\nlog_dri = \"x\"\n",
            "[[server]\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = load_partial(&path).unwrap_err();
            assert!(format!("{err:#}").contains("servers.toml:"), "{err:#}");
        }
        assert!(load_partial(&dir.path().join("missing.toml")).is_err());
    }
}
