//! The Lua scripts that keep the cluster's state in Redis, and what they answer. Each checks and
//! changes the state and appends its event to the stream in one atomic step, so that two nodes
//! logging in one name at once cannot both win, and every node reads the same events in the same
//! order. `lua/common.lua` (sent in front of each) says which keys they use.

use std::sync::LazyLock;

use redis::Value;

/// Every script, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// A node joins: sets the epoch of an empty Redis, registers the node.
    Join,
    /// Everyone logged in and the stream's last entry, for a kernel that starts.
    Users,
    Login,
    /// `msg` and `msgall`.
    Say,
    /// `logout`, and sessions that ended.
    Leave,
    /// A login asserted again after a fence or an empty Redis.
    Reclaim,
    /// Presence, delivered position, and reaping the nodes that vanished.
    Beat,
    /// A node leaves on a clean stop, if nobody is logged in on it.
    Part,
    /// Presence alone, refreshed by the link every second whatever the kernel is doing.
    Alive,
}

impl Script {
    pub const ALL: [Script; 9] = [
        Script::Join,
        Script::Users,
        Script::Login,
        Script::Say,
        Script::Leave,
        Script::Reclaim,
        Script::Beat,
        Script::Part,
        Script::Alive,
    ];

    pub fn redis(self) -> &'static redis::Script {
        static SCRIPTS: LazyLock<Vec<redis::Script>> = LazyLock::new(|| {
            let common = include_str!("lua/common.lua");
            let bodies = [
                include_str!("lua/join.lua"),
                include_str!("lua/users.lua"),
                include_str!("lua/login.lua"),
                include_str!("lua/say.lua"),
                include_str!("lua/leave.lua"),
                include_str!("lua/reclaim.lua"),
                include_str!("lua/beat.lua"),
                include_str!("lua/part.lua"),
                include_str!("lua/alive.lua"),
            ];
            bodies
                .iter()
                .map(|body| redis::Script::new(&format!("{common}\n{body}")))
                .collect()
        });
        &SCRIPTS[self as usize]
    }
}

/// The keys every script gets, named from `prefix` (see `lua/common.lua`).
pub fn keys(prefix: &str) -> [String; 8] {
    ["epoch", "users", "names", "events", "nodes", "unused", "seq", ""].map(|k| format!("{prefix}{k}"))
}

/// What a script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; what follows `OK`, as text.
    Ok(Vec<String>),
    /// A frame applied already (sent again after a kernel restart): nothing done.
    Dup,
    /// Refused, for the reason named (`taken`, `first`, `notfound`, …).
    Refused(String),
    /// Redis holds another epoch (it came back empty): the node must join again.
    Reset,
    /// The node is not registered as this instance (it was reaped): it must heal.
    Fenced,
    /// The node name is held by another live instance, for this many more milliseconds.
    Busy(u64),
}

impl Reply {
    /// Reads a script's answer (an array whose first element says which).
    pub fn parse(value: &Value) -> Option<Reply> {
        let Value::Array(items) = value else { return None };
        let mut text = items.iter().map(|v| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        });
        let head = text.next()??;
        let rest: Option<Vec<String>> = text.collect();
        let rest = rest?;
        Some(match head.as_str() {
            "OK" => Reply::Ok(rest),
            "DUP" => Reply::Dup,
            "ERR" => Reply::Refused(rest.into_iter().next()?),
            "RESET" => Reply::Reset,
            "FENCED" => Reply::Fenced,
            "BUSY" => Reply::Busy(rest.first()?.parse().ok()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn answers_are_read_back() {
        let ok = Value::Array(vec![bulk("OK"), bulk("1-0")]);
        assert_eq!(Reply::parse(&ok), Some(Reply::Ok(vec!["1-0".into()])));
        assert_eq!(Reply::parse(&Value::Array(vec![bulk("DUP")])), Some(Reply::Dup));
        let taken = Value::Array(vec![bulk("ERR"), bulk("taken")]);
        assert_eq!(Reply::parse(&taken), Some(Reply::Refused("taken".into())));
        assert_eq!(
            Reply::parse(&Value::Array(vec![bulk("BUSY"), bulk("1200")])),
            Some(Reply::Busy(1200))
        );
        assert_eq!(Reply::parse(&Value::Array(vec![bulk("FENCED")])), Some(Reply::Fenced));
        assert_eq!(Reply::parse(&bulk("OK")), None);
        assert_eq!(Reply::parse(&Value::Array(vec![bulk("WHAT")])), None);
    }

    #[test]
    fn every_script_is_common_code_and_its_own() {
        let shas: std::collections::HashSet<&str> = Script::ALL.iter().map(|s| s.redis().get_hash()).collect();
        assert_eq!(shas.len(), Script::ALL.len());
        assert_eq!(keys("chat:")[3], "chat:events");
        assert_eq!(keys("chat:")[7], "chat:");
    }
}
