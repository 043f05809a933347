//! The entries of the cluster's event stream, pure: what the scripts append (`XADD`) and every
//! kernel reads back in the stream's order. Field names are one letter, values text:
//!
//! ```text
//! k=in   o=owner n=name s=seq [r=1: re-asserted after Redis came back empty]  a login
//! k=out  o=owner n=name f=c|g|r|t                                            a logout (its
//!        logout command, its connection ended, its node was reaped, its name went to an
//!        earlier login)
//! k=all  o=owner n=name h=HH:MM:SS x=text                                    a msgall
//! k=msg  o=owner n=name t=target owner m=target name h=HH:MM:SS x=text       a msg
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A stream entry id, `ms-seq`; ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    pub ms: u64,
    pub seq: u64,
}

impl Id {
    /// The id as one increasing number, for the frontends' duplicate filter (an event's origin):
    /// the millisecond, and the entry within it (Redis numbers them from 0; far fewer than 2^20
    /// entries are added in one millisecond).
    pub fn number(self) -> u64 {
        (self.ms << 20) | self.seq.min((1 << 20) - 1)
    }

    /// The id a [`number`](Self::number) stands for.
    pub fn from_number(number: u64) -> Self {
        Self {
            ms: number >> 20,
            seq: number & ((1 << 20) - 1),
        }
    }
}

impl FromStr for Id {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        Ok(Self {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Why a user logged out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Its `logout` command: its session is closed once that is delivered.
    Command,
    /// Its connection ended.
    Gone,
    /// Its node stopped refreshing its presence and another node logged its users out.
    Reaped,
    /// An earlier login of the same name was asserted (after Redis came back empty).
    Taken,
}

impl Leave {
    const ALL: [Leave; 4] = [Leave::Command, Leave::Gone, Leave::Reaped, Leave::Taken];

    /// As the scripts spell it: an entry's `f`, and the `leave` script's flag.
    pub fn flag(self) -> &'static str {
        match self {
            Leave::Command => "c",
            Leave::Gone => "g",
            Leave::Reaped => "r",
            Leave::Taken => "t",
        }
    }

    pub fn from_flag(flag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|why| why.flag() == flag)
    }
}

/// One event of the chat, as every node reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    In {
        owner: String,
        name: String,
        seq: u64,
        /// Re-asserted after Redis came back empty: those who knew the user already see nothing.
        silent: bool,
    },
    Out {
        owner: String,
        name: String,
        why: Leave,
    },
    All {
        owner: String,
        name: String,
        time: String,
        text: String,
    },
    Msg {
        owner: String,
        name: String,
        target: String,
        target_name: String,
        time: String,
        text: String,
    },
}

impl Entry {
    /// The entry these fields make; `None` if they make none (another version's, say: skipped).
    pub fn parse(fields: &HashMap<String, String>) -> Option<Self> {
        let get = |k: &str| fields.get(k).cloned();
        let owner = get("o")?;
        let name = get("n")?;
        Some(match fields.get("k")?.as_str() {
            "in" => Entry::In {
                owner,
                name,
                seq: get("s")?.parse().ok()?,
                silent: fields.get("r").is_some_and(|r| r == "1"),
            },
            "out" => Entry::Out {
                owner,
                name,
                why: Leave::from_flag(fields.get("f")?)?,
            },
            "all" => Entry::All {
                owner,
                name,
                time: get("h")?,
                text: get("x")?,
            },
            "msg" => Entry::Msg {
                owner,
                name,
                target: get("t")?,
                target_name: get("m")?,
                time: get("h")?,
                text: get("x")?,
            },
            _ => return None,
        })
    }

    /// The session whose action it is.
    pub fn owner(&self) -> &str {
        match self {
            Entry::In { owner, .. }
            | Entry::Out { owner, .. }
            | Entry::All { owner, .. }
            | Entry::Msg { owner, .. } => owner,
        }
    }
}

#[cfg(test)]
mod tests;
