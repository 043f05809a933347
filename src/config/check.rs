//! The walk over a spanned TOML table that finds every problem of a file at once: unknown keys,
//! wrong types and values, duplicates, each with its line and key.

mod fields;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::*;
use fields::Fields;

/// The config as far as it is valid, and every problem, in line order.
pub(super) fn check(file: &Path, base: &Path, text: &str) -> (Config, Vec<Problem>) {
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
            cluster: None,
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
                "cluster" => match value.get_ref() {
                    DeValue::Table(table) => config.cluster = self.cluster(table, value.span()),
                    _ => self.problem(value.span(), "cluster", "must be a table: [cluster]"),
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
                other => self.problem(
                    key.span(),
                    other,
                    "unknown key (expected [supervisor], [cluster] or [[server]])",
                ),
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

    fn cluster(&mut self, table: &Table<'_>, span: Range<usize>) -> Option<super::Cluster> {
        use redis::IntoConnectionInfo;
        let mut fields = Fields::new(table, "cluster");
        let redis = fields.string(self, "redis");
        let node = fields.string(self, "node");
        let (redis_span, node_span) = (fields.span("redis"), fields.span("node"));
        fields.finish(self, "redis, node");
        let Some(redis) = redis else {
            self.problem(
                span,
                "cluster.redis",
                "missing (required): redis://HOST:PORT or unix:///PATH",
            );
            return None;
        };
        if let Err(e) = redis.as_str().into_connection_info() {
            let message = format!("not a Redis address ({e}): redis://HOST:PORT[/DB] or unix:///PATH");
            self.problem(redis_span.unwrap_or(span), "cluster.redis", message);
            return None;
        }
        let node = node.unwrap_or_else(super::cluster::hostname);
        if !super::cluster::valid_node(&node) {
            let span = node_span.unwrap_or(span);
            self.problem(span, "cluster.node", "must be 1 to 64 of A-Z, a-z, 0-9, _, - and .");
            return None;
        }
        Some(super::Cluster { redis, node })
    }

    fn server(&mut self, table: &Table<'_>, span: Range<usize>, at: &str) -> Option<Server> {
        let mut fields = Fields::new(table, at);
        let name = self.server_name(&mut fields, at);
        let kind = fields
            .string(self, "kind")
            .and_then(|kind| self.word(&fields, "kind", &kind, &span, at));
        let host = self.host(&mut fields, &span, at);
        let port = fields.integer(self, "port", 0..=65535).map(|p| p as u16);
        let color = fields.boolean(self, "color").unwrap_or(DEFAULT_COLOR);
        let limits = self.limits(&mut fields);
        let allowed_hosts = fields.hosts(self, "allowed_hosts").unwrap_or_default();
        let motd = self.motd(&mut fields, &span, at);
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
        let settings = Settings {
            motd: motd.unwrap_or_else(|| default_motd(&name)),
            name,
            kind: kind?,
            color,
            limits,
            allowed_hosts,
        };
        Some(Server {
            settings,
            host: host?,
            port: port?,
            restart: restart?,
        })
    }

    /// A server's name: valid, not reserved, not another server's.
    fn server_name(&mut self, fields: &mut Fields<'_, '_>, at: &str) -> Option<String> {
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
        name
    }

    /// A server's `host`, [`DEFAULT_HOST`] if it has none; `None` if it is not an IP address.
    fn host(&mut self, fields: &mut Fields<'_, '_>, table: &Range<usize>, at: &str) -> Option<IpAddr> {
        let Some(host) = fields.string(self, "host") else {
            return Some(DEFAULT_HOST);
        };
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() {
            let span = fields.span("host").unwrap_or(table.clone());
            self.problem(span, format!("{at}.host"), format!("`{host}` is not an IP address"));
        }
        ip
    }

    /// A server's limits, each its default if it is not set (or not valid).
    fn limits(&mut self, fields: &mut Fields<'_, '_>) -> Limits {
        let seconds = |n: i64| Duration::from_secs(n as u64);
        let defaults = Limits::default();
        Limits {
            max_line: fields
                .integer(self, "max_line", 1..=1 << 20)
                .map_or(defaults.max_line, |n| n as usize),
            max_connections: fields
                .integer(self, "max_connections", 1..=1_000_000)
                .map_or(defaults.max_connections, |n| n as usize),
            max_connections_per_ip: fields
                .integer(self, "max_connections_per_ip", 1..=1_000_000)
                .map_or(defaults.max_connections_per_ip, |n| n as usize),
            input_rate: fields
                .integer(self, "input_rate", 0..=1_000_000)
                .map_or(defaults.input_rate, |n| n as u32),
            input_burst: fields
                .integer(self, "input_burst", 1..=1_000_000)
                .map_or(defaults.input_burst, |n| n as u32),
            send_timeout: fields
                .integer(self, "send_timeout", 1..=3600)
                .map_or(defaults.send_timeout, seconds),
            // Of the web server only.
            handshake_timeout: fields
                .integer(self, "handshake_timeout", 1..=3600)
                .map_or(defaults.handshake_timeout, seconds),
            ping_interval: defaults.ping_interval,
        }
    }

    /// A server's `motd`, if it is set and can be a greeting.
    fn motd(&mut self, fields: &mut Fields<'_, '_>, table: &Range<usize>, at: &str) -> Option<String> {
        let motd = fields.string(self, "motd")?;
        let Some(problem) = motd_problem(&motd) else {
            return Some(motd);
        };
        let span = fields.span("motd").unwrap_or(table.clone());
        self.problem(span, format!("{at}.motd"), problem);
        None
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
                first.insert(server.addr(), &server.settings.name);
            }
        }
    }
}
