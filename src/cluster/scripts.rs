//! The Lua scripts that keep the cluster's state in Redis: what each takes and what it answers,
//! spelled here as the Lua spells it, so that the member deals in types. Each script checks and
//! changes the state and appends its event to the stream in one atomic step, so that two nodes
//! logging in one name at once cannot both win, and every node reads the same events in the same
//! order. `lua/common.lua` (sent in front of each) says which keys they use; the header of each
//! `lua/*.lua` says its arguments and answers.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Value;

use super::entry::{Id, Leave};
use crate::chat::Login;
use crate::chat::name::{self, Keys};

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

    /// Whether its ARGV starts with the common head (epoch, node, instance). A join's starts
    /// with the epoch it proposes instead: it is how the node learns the epoch.
    pub fn takes_head(self) -> bool {
        self != Script::Join
    }
}

/// The keys every script gets, named from `prefix` (see `lua/common.lua`).
pub fn keys(prefix: &str) -> [String; 8] {
    ["epoch", "users", "names", "events", "nodes", "unused", "seq", ""].map(|k| format!("{prefix}{k}"))
}

/// Where the stream is in [`keys`].
pub const EVENTS: usize = 3;

/// A script and its arguments after the common head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub script: Script,
    pub args: Vec<String>,
}

/// A session's frame, which the scripts record to recognise it if it comes again: the session's
/// owner (`node/frontend/session`), its frontend's process, the frame's number.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub owner: &'a str,
    pub process: u64,
    pub seq: u64,
}

impl Frame<'_> {
    fn args(self) -> Vec<String> {
        vec![self.owner.to_string(), self.process.to_string(), self.seq.to_string()]
    }
}

/// Why a login is asserted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This node was reaped while cut off: the name is taken back only if nobody holds it now,
    /// as a new login (everyone saw it leave).
    Fenced,
    /// Redis came back empty: quietly and in its old place, the earlier login of a name winning.
    Reset,
}

impl Call {
    /// A node joins, proposing `candidate` as the epoch of an empty Redis.
    pub fn join(candidate: &str, node: &str, instance: &str, presence: Duration) -> Self {
        let args = vec![
            candidate.to_string(),
            node.to_string(),
            instance.to_string(),
            presence.as_millis().to_string(),
        ];
        Self {
            script: Script::Join,
            args,
        }
    }

    pub fn users() -> Self {
        Self {
            script: Script::Users,
            args: Vec::new(),
        }
    }

    pub fn part() -> Self {
        Self {
            script: Script::Part,
            args: Vec::new(),
        }
    }

    /// `login name`: an invalid name is refused by the script, after its other checks.
    pub fn login(frame: Frame<'_>, name: &str) -> Self {
        let valid = name::is_valid(name);
        let mut args = frame.args();
        args.extend([flag(valid), name.to_string()]);
        if valid {
            args.extend(Keys::of(name).iter().map(str::to_string));
        }
        Self {
            script: Script::Login,
            args,
        }
    }

    /// `msg to text`, or `msgall text` without `to`.
    pub fn say(frame: Frame<'_>, time: &str, text: String, to: Option<&str>) -> Self {
        let mut args = frame.args();
        args.extend([time.to_string(), text]);
        match to {
            Some(to) if name::is_valid(to) => args.extend(Keys::of(to).iter().map(str::to_string)),
            // A typed name that is no valid name names nobody: one key nobody holds.
            Some(_) => args.push(String::new()),
            None => {}
        }
        Self {
            script: Script::Say,
            args,
        }
    }

    pub fn logout(frame: Frame<'_>) -> Self {
        let args = vec![
            frame.process.to_string(),
            frame.seq.to_string(),
            Leave::Command.flag().to_string(),
            frame.owner.to_string(),
        ];
        Self {
            script: Script::Leave,
            args,
        }
    }

    /// These sessions ended (their connection, or their frontend): no frame of theirs to record.
    pub fn gone<I: IntoIterator<Item = String>>(owners: I) -> Self {
        let mut args = vec![String::new(), String::new(), Leave::Gone.flag().to_string()];
        args.extend(owners);
        Self {
            script: Script::Leave,
            args,
        }
    }

    /// Asserts `owner`'s login again.
    pub fn reclaim(owner: String, login: &Login, claim: Claim) -> Self {
        let (silent, mode) = match claim {
            Claim::Fenced => (false, "fenced"),
            Claim::Reset => (true, "reset"),
        };
        let mut args = vec![
            owner,
            login.seq.to_string(),
            login.name.clone(),
            flag(silent),
            mode.to_string(),
        ];
        args.extend(Keys::of(&login.name).iter().map(str::to_string));
        Self {
            script: Script::Reclaim,
            args,
        }
    }

    /// A heartbeat: the presence's life, how far this node's frontends were written the stream
    /// (if at all), and whether to reap the nodes whose presence lapsed.
    pub fn beat(presence: Duration, written: Option<Id>, reap: bool) -> Self {
        let args = vec![
            presence.as_millis().to_string(),
            written.map_or_else(String::new, |id| id.to_string()),
            flag(reap),
        ];
        Self {
            script: Script::Beat,
            args,
        }
    }
}

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}

/// What a script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; what follows `OK`, as text (read by [`appended`], [`Joined`], [`Everyone`],
    /// [`Beaten`]).
    Ok(Vec<String>),
    /// A frame applied already (sent again after a kernel restart): nothing done.
    Dup,
    Refused(Refusal),
    /// Redis holds another epoch (it came back empty): the node must join again.
    Reset,
    /// The node is not registered as this instance (it was reaped): it must heal.
    Fenced,
    /// The node name is held by another live instance, for this many more milliseconds.
    Busy(u64),
}

/// Why a script refused (`{'ERR', why}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `login`: the session is logged in already.
    Already,
    /// `login`: the name is not a valid one.
    Invalid,
    /// `login`, `reclaim`: another session holds the name.
    Taken,
    /// `msg`, `msgall`, `logout`: the session is not logged in.
    First,
    /// `msg`: nobody holds the name typed.
    NotFound,
    /// A reason this version does not know (a newer script's), as spelled.
    Unknown(String),
}

impl Refusal {
    /// Each reason as the scripts spell it.
    const SPELLINGS: [(&'static str, Refusal); 5] = [
        ("already", Refusal::Already),
        ("invalid", Refusal::Invalid),
        ("taken", Refusal::Taken),
        ("first", Refusal::First),
        ("notfound", Refusal::NotFound),
    ];

    pub fn parse(why: &str) -> Self {
        Self::SPELLINGS
            .iter()
            .find(|(spelling, _)| *spelling == why)
            .map_or_else(|| Refusal::Unknown(why.to_string()), |(_, refusal)| refusal.clone())
    }
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
            "ERR" => Reply::Refused(Refusal::parse(rest.first()?)),
            "RESET" => Reply::Reset,
            "FENCED" => Reply::Fenced,
            "BUSY" => Reply::Busy(rest.first()?.parse().ok()?),
            _ => return None,
        })
    }
}

/// The entry a `login`, `say`, `leave` or `reclaim` appended (`None`: it appended none).
pub fn appended(fields: &[String]) -> Option<Id> {
    fields.first().and_then(|f| f.parse().ok())
}

/// What `join` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The epoch of the Redis data (the one proposed, if Redis was empty).
    pub epoch: String,
    /// How far this node's previous kernel had delivered the stream, if it recorded it.
    pub delivered: Option<Id>,
    /// Whether Redis still had this node registered as this instance (a kernel restart in time).
    pub kept: bool,
}

impl Joined {
    pub fn read(fields: &[String]) -> Option<Self> {
        let epoch = fields.first()?.clone();
        Some(Self {
            epoch,
            delivered: fields.get(1).and_then(|p| p.parse().ok()),
            kept: fields.get(2).is_some_and(|k| k == "kept"),
        })
    }
}

/// What `users` answered: the stream's last entry, and everyone logged in at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Everyone {
    pub last: Id,
    /// Each as (owner, login); records that make no sense are left out.
    pub users: Vec<(String, Login)>,
}

impl Everyone {
    pub fn read(fields: &[String]) -> Option<Self> {
        let (last, pairs) = fields.split_first()?;
        let users = pairs
            .chunks_exact(2)
            .filter_map(|pair| {
                // A login record: seq, name, then its name keys, tab-separated.
                let mut record = pair[1].split('\t');
                let seq = record.next()?.parse().ok()?;
                let name = record.next()?.to_string();
                Some((pair[0].clone(), Login { name, seq }))
            })
            .collect();
        Some(Self {
            last: last.parse().unwrap_or_default(),
            users,
        })
    }
}

/// What `beat` answered: the nodes it reaped, and every member node left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beaten {
    pub reaped: Vec<String>,
    pub members: Vec<String>,
}

impl Beaten {
    pub fn read(fields: &[String]) -> Option<Self> {
        let (count, nodes) = fields.split_first()?;
        let count: usize = count.parse().unwrap_or(0);
        let (reaped, members) = nodes.split_at(count.min(nodes.len()));
        Some(Self {
            reaped: reaped.to_vec(),
            members: members.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests;
