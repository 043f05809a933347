//! `servers.toml`: the schema, its defaults, and strict validation that reports every problem at
//! once, each with file, line and key.
//!
//! The file is walked as a spanned TOML table rather than deserialized, so that an unknown key, a
//! wrong type and a duplicate name are all reported in one run instead of one per run.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::frontend::Kind;

/// A validated configuration. Paths are absolute (relative ones are taken from the file's folder).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub log_dir: PathBuf,
    pub run_dir: PathBuf,
    /// Dated log files kept after rotation, per log.
    pub log_keep: usize,
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
    pub restart: Restart,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// When a server's process is restarted after it exits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Whatever the exit status (the default).
    Always,
    /// Only after a non-zero exit or a signal.
    OnFailure,
    Never,
}

pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const DEFAULT_COLOR: bool = true;
pub const DEFAULT_MAX_LINE: usize = 4096;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_LOG_DIR: &str = "logs";
pub const DEFAULT_RUN_DIR: &str = "run";
pub const DEFAULT_LOG_KEEP: usize = 7;
/// Names the supervisor's own files use, so no server may take them.
const RESERVED: [&str; 2] = ["kernel", "supervisor"];

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
        for p in &self.problems {
            write!(f, "\n  {}:{}: {}: {}", self.file.display(), p.line, p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Reads and validates `path`.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(base)?;
    Ok(parse(path, &base, &text)?)
}

/// Validates `text` as the contents of `file`; relative paths are taken from `base`.
pub fn parse(file: &Path, base: &Path, text: &str) -> Result<Config, Invalid> {
    let mut check = Check {
        text,
        problems: Vec::new(),
        names: Vec::new(),
    };
    let config = check.file(file, base);
    if check.problems.is_empty() {
        Ok(config)
    } else {
        check.problems.sort_by_key(|p| p.line);
        Err(Invalid {
            file: file.to_path_buf(),
            problems: check.problems,
        })
    }
}

struct Check<'t> {
    text: &'t str,
    problems: Vec<Problem>,
    /// Server names seen so far, to refuse a second use.
    names: Vec<String>,
}

type Table<'i> = DeTable<'i>;

impl Check<'_> {
    fn problem(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let line = self.text[..span.start.min(self.text.len())].matches('\n').count() + 1;
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
        if let Some(keep) = fields.integer(self, "log_keep", 0..=3650) {
            config.log_keep = keep as usize;
        }
        fields.finish(self, "log_dir, run_dir, log_keep");
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
                    format!("`{name}` is reserved for the supervisor's own files"),
                );
            } else if self.names.contains(name) {
                self.problem(span, format!("{at}.name"), format!("`{name}` is used twice"));
            }
            self.names.push(name.clone());
        }
        let kind = fields.string(self, "kind").and_then(|kind| match kind.as_str() {
            "tcp" => Some(Kind::Tcp),
            "ws" => Some(Kind::Ws),
            _ => {
                let span = fields.span("kind").unwrap_or(span.clone());
                self.problem(
                    span,
                    format!("{at}.kind"),
                    format!("`{kind}` is not a kind: use \"tcp\" or \"ws\""),
                );
                None
            }
        });
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
        let restart = fields
            .string(self, "restart")
            .map_or(Some(Restart::Always), |r| match r.as_str() {
                "always" => Some(Restart::Always),
                "on-failure" => Some(Restart::OnFailure),
                "never" => Some(Restart::Never),
                _ => {
                    let span = fields.span("restart").unwrap_or(span.clone());
                    self.problem(
                        span,
                        format!("{at}.restart"),
                        format!("`{r}`: use \"always\", \"on-failure\" or \"never\""),
                    );
                    None
                }
            });
        for required in ["name", "kind", "port"] {
            if fields.span(required).is_none() {
                self.problem(span.clone(), format!("{at}.{required}"), "missing (required)");
            }
        }
        fields.finish(
            self,
            "name, kind, host, port, color, max_line, max_connections, restart",
        );
        Some(Server {
            name: name?,
            kind: kind?,
            host: host?,
            port: port?,
            color,
            max_line,
            max_connections,
            restart: restart?,
        })
    }

    /// Addresses are unique, unless the port is 0.
    fn unique(&mut self, root: &Spanned<Table<'_>>, servers: &[Server], numbers: &[usize]) {
        let Some(DeValue::Array(tables)) = root.get_ref().get("server").map(|v| v.get_ref()) else {
            return;
        };
        let span_of = |name: &str, key: &str| {
            tables.iter().find_map(|t| {
                let table = t.get_ref().as_table()?;
                (table.get("name")?.get_ref().as_str()? == name).then(|| table.get(key).map(|v| v.span()))?
            })
        };
        for (i, server) in servers.iter().enumerate() {
            if server.port != 0
                && let Some(first) = servers[..i].iter().find(|s| s.addr() == server.addr())
            {
                let span = span_of(&server.name, "port").unwrap_or(0..0);
                self.problem(
                    span,
                    format!("server[{}].port", numbers[i]),
                    format!("{} is also the address of `{}`", server.addr(), first.name),
                );
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
                "unknown key (known: log_dir, run_dir, log_keep)",
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
        for bad in ["\"A\"", "\"a b\"", "\"\"", "\"kernel\"", "\"supervisor\""] {
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
}
