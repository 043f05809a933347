//! Unit tests of the schema, the defaults and the problems reported.

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
    let config = parse_ok(include_str!("../../servers.toml"));
    let names: Vec<_> = config
        .servers
        .iter()
        .map(|s| (s.settings.name.as_str(), s.settings.kind, s.port))
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
    let limits = &s.settings.limits;
    assert_eq!(s.host, DEFAULT_HOST);
    assert!(s.settings.color);
    assert_eq!((limits.max_line, limits.max_connections), (4096, 10_000));
    assert_eq!(s.restart, Restart::Always);
    assert_eq!(config.log_keep, DEFAULT_LOG_KEEP);
    assert_eq!(
        (limits.max_connections_per_ip, limits.input_rate, limits.input_burst),
        (64, 20, 40)
    );
    assert_eq!(limits.send_timeout, Duration::from_secs(30));
    assert_eq!(limits.handshake_timeout, Duration::from_secs(10));
    assert_eq!(limits.ping_interval, DEFAULT_PING_INTERVAL);
    assert!(s.settings.allowed_hosts.is_empty());
    assert_eq!(s.settings.motd, "Welcome to the a chat. Type help for the commands.");
    assert_eq!(config.watchdog, Some(Duration::from_secs(5)));
}

#[test]
fn motd_set_or_empty() {
    let config = parse_ok(
        "[[server]]\nname = \"t\"\nkind = \"tcp\"\nport = 0\nmotd = \"Hi, ☃ there! Be nice.\"\n\
         [[server]]\nname = \"w\"\nkind = \"ws\"\nport = 0\nmotd = \"\"\n",
    );
    assert_eq!(config.servers[0].settings.motd, "Hi, ☃ there! Be nice.");
    assert_eq!(config.servers[1].settings.motd, "", "empty: no greeting");
    let longest = "é".repeat(MAX_MOTD);
    let config = parse_ok(&format!(
        "[[server]]\nname = \"t\"\nkind = \"tcp\"\nport = 0\nmotd = \"{longest}\"\n"
    ));
    assert_eq!(config.servers[0].settings.motd, longest);
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
    let s = &config.servers[0].settings;
    let limits = &s.limits;
    assert_eq!(
        (limits.input_rate, limits.input_burst, limits.max_connections_per_ip),
        (0, 5, 2)
    );
    assert_eq!(
        (limits.send_timeout.as_secs(), limits.handshake_timeout.as_secs()),
        (3, 4)
    );
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
    let names: Vec<_> = partial.servers.iter().map(|s| s.settings.name.as_str()).collect();
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
