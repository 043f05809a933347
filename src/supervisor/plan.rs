//! What an edit of servers.toml changes, as a pure diff of the running config and the new one;
//! the supervisor then binds, stops and starts by the plan.

use std::collections::BTreeMap;

use crate::config::{Config, Server};

/// The plan of one reload.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// New servers: bind a socket, start a frontend.
    pub added: Vec<Server>,
    /// Servers gone from the file: stop them, close their sockets.
    pub removed: Vec<String>,
    /// Changed at the same address (port 0 included): the supervisor keeps its socket, so no
    /// connection is refused, and restarts the frontend.
    pub restarted: Vec<Server>,
    /// Changed address: bind the new socket first (a failure changes nothing), then restart.
    pub rebound: Vec<Server>,
    pub unchanged: Vec<String>,
    /// `[supervisor]` or `[cluster]` differs; it takes effect at the next `up` only.
    pub supervisor_changed: bool,
}

/// How `old` (running) becomes `new` (just read).
pub fn diff(old: &Config, new: &Config) -> Plan {
    let before: BTreeMap<&str, &Server> = old.servers.iter().map(|s| (s.settings.name.as_str(), s)).collect();
    let mut plan = Plan {
        supervisor_changed: (&old.log_dir, &old.run_dir, old.log_keep, old.watchdog, &old.cluster)
            != (&new.log_dir, &new.run_dir, new.log_keep, new.watchdog, &new.cluster),
        ..Plan::default()
    };
    for server in &new.servers {
        match before.get(server.settings.name.as_str()) {
            None => plan.added.push(server.clone()),
            Some(old) if *old == server => plan.unchanged.push(server.settings.name.clone()),
            Some(old) if old.addr() == server.addr() => plan.restarted.push(server.clone()),
            Some(_) => plan.rebound.push(server.clone()),
        }
    }
    plan.removed = before
        .keys()
        .filter(|name| !new.servers.iter().any(|s| s.settings.name == **name))
        .map(|name| name.to_string())
        .collect();
    plan
}

impl Plan {
    /// Nothing to do at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.restarted.is_empty()
            && self.rebound.is_empty()
            && !self.supervisor_changed
    }

    /// Servers that need a new socket.
    pub fn to_bind(&self) -> impl Iterator<Item = &Server> {
        self.added.iter().chain(&self.rebound)
    }

    /// Servers to stop: removed or changed.
    pub fn to_stop(&self) -> impl Iterator<Item = &str> {
        let changed = self
            .restarted
            .iter()
            .chain(&self.rebound)
            .map(|s| s.settings.name.as_str());
        self.removed.iter().map(String::as_str).chain(changed)
    }

    /// Servers to start once the others stopped: changed or added.
    pub fn to_start(&self) -> impl Iterator<Item = &Server> {
        self.restarted.iter().chain(&self.rebound).chain(&self.added)
    }

    fn counts(&self) -> [(usize, &'static str); 4] {
        [
            (self.added.len(), "added"),
            (self.removed.len(), "removed"),
            (self.restarted.len() + self.rebound.len(), "changed"),
            (self.unchanged.len(), "unchanged"),
        ]
    }

    /// `1 added, 0 removed, 2 changed, 1 unchanged`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self.counts().iter().map(|(n, what)| format!("{n} {what}")).collect();
        parts.join(", ")
    }

    /// Only what changed: `1 added, 2 changed`, or `[supervisor] only`.
    pub fn changes(&self) -> String {
        let parts: Vec<String> = self.counts()[..3]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        match (parts.is_empty(), self.supervisor_changed) {
            (true, true) => "[supervisor] only".into(),
            (true, false) => "no change".into(),
            _ => parts.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse(Path::new("servers.toml"), Path::new("/"), text).unwrap()
    }

    fn tcp(name: &str, port: u16, extra: &str) -> String {
        format!("[[server]]\nname = \"{name}\"\nkind = \"tcp\"\nport = {port}\n{extra}")
    }

    fn names(servers: &[Server]) -> Vec<&str> {
        servers.iter().map(|s| s.settings.name.as_str()).collect()
    }

    #[test]
    fn each_server_lands_in_one_bucket() {
        let old = config(
            &[
                tcp("keep", 1, ""),
                tcp("tune", 2, ""),
                tcp("move", 3, ""),
                tcp("drop", 4, ""),
            ]
            .concat(),
        );
        let new = config(
            &[
                tcp("keep", 1, ""),
                tcp("tune", 2, "max_line = 10\n"),
                tcp("move", 30, ""),
                tcp("new", 5, ""),
            ]
            .concat(),
        );
        let plan = diff(&old, &new);
        assert_eq!(names(&plan.added), ["new"]);
        assert_eq!(plan.removed, ["drop"]);
        assert_eq!(names(&plan.restarted), ["tune"]);
        assert_eq!(names(&plan.rebound), ["move"]);
        assert_eq!(plan.unchanged, ["keep"]);
        assert!(!plan.supervisor_changed);
        assert_eq!(plan.summary(), "1 added, 1 removed, 2 changed, 1 unchanged");
        assert_eq!(plan.changes(), "1 added, 1 removed, 2 changed");
        assert_eq!(names(&plan.to_bind().cloned().collect::<Vec<_>>()), ["new", "move"]);
        assert_eq!(plan.to_stop().collect::<Vec<_>>(), ["drop", "tune", "move"]);
        assert_eq!(
            names(&plan.to_start().cloned().collect::<Vec<_>>()),
            ["tune", "move", "new"]
        );
    }

    #[test]
    fn the_same_file_is_an_empty_plan() {
        let text = [tcp("a", 0, ""), tcp("b", 7, "restart = \"never\"\n")].concat();
        let plan = diff(&config(&text), &config(&text));
        assert!(plan.is_empty());
        assert_eq!(plan.unchanged, ["a", "b"]);
        assert_eq!(plan.changes(), "no change");
    }

    #[test]
    fn port_0_keeps_its_socket_when_other_keys_change() {
        let plan = diff(&config(&tcp("a", 0, "")), &config(&tcp("a", 0, "color = false\n")));
        assert_eq!(names(&plan.restarted), ["a"]);
        assert!(plan.rebound.is_empty());
        // Another host is another address.
        let plan = diff(
            &config(&tcp("a", 0, "")),
            &config(&tcp("a", 0, "host = \"127.0.0.2\"\n")),
        );
        assert_eq!(names(&plan.rebound), ["a"]);
    }

    #[test]
    fn a_change_of_kind_or_policy_restarts_it() {
        let ws = "[[server]]\nname = \"a\"\nkind = \"ws\"\nport = 1\n";
        let plan = diff(&config(&tcp("a", 1, "")), &config(ws));
        assert_eq!(names(&plan.restarted), ["a"]);
        let plan = diff(
            &config(&tcp("a", 1, "")),
            &config(&tcp("a", 1, "restart = \"never\"\n")),
        );
        assert_eq!(names(&plan.restarted), ["a"]);
    }

    #[test]
    fn supervisor_settings_are_noticed_but_not_servers() {
        let old = config(&tcp("a", 1, ""));
        let new = config(&format!("[supervisor]\nwatchdog = 0\n{}", tcp("a", 1, "")));
        let plan = diff(&old, &new);
        assert!(plan.supervisor_changed);
        assert!(!plan.is_empty());
        assert_eq!(plan.unchanged, ["a"]);
        assert_eq!(plan.changes(), "[supervisor] only");
    }

    #[test]
    fn an_empty_file_removes_everything() {
        let plan = diff(&config(&[tcp("b", 1, ""), tcp("a", 2, "")].concat()), &config(""));
        assert_eq!(plan.removed, ["a", "b"]);
        assert_eq!(plan.summary(), "0 added, 2 removed, 0 changed, 0 unchanged");
    }
}
