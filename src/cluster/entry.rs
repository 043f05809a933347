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
                why: match get("f")?.as_str() {
                    "c" => Leave::Command,
                    "g" => Leave::Gone,
                    "r" => Leave::Reaped,
                    "t" => Leave::Taken,
                    _ => return None,
                },
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
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ids_order_and_number_as_redis_orders_them() {
        let a: Id = "1700000000000-0".parse().unwrap();
        let b: Id = "1700000000000-7".parse().unwrap();
        let c: Id = "1700000000001-0".parse().unwrap();
        assert!(a < b && b < c);
        assert!(a.number() < b.number() && b.number() < c.number());
        assert_eq!(Id::from_number(b.number()), b);
        assert_eq!(b.to_string(), "1700000000000-7");
        assert!("17-".parse::<Id>().is_err() && "x".parse::<Id>().is_err());
    }

    #[test]
    fn every_kind_is_read_back() {
        assert_eq!(
            Entry::parse(&fields(&[
                ("k", "in"),
                ("o", "h1/web/3"),
                ("n", "ann"),
                ("s", "42"),
                ("r", "1")
            ])),
            Some(Entry::In {
                owner: "h1/web/3".into(),
                name: "ann".into(),
                seq: 42,
                silent: true
            })
        );
        assert_eq!(
            Entry::parse(&fields(&[("k", "out"), ("o", "h1/web/3"), ("n", "ann"), ("f", "r")])),
            Some(Entry::Out {
                owner: "h1/web/3".into(),
                name: "ann".into(),
                why: Leave::Reaped
            })
        );
        let msg = Entry::parse(&fields(&[
            ("k", "msg"),
            ("o", "h1/web/3"),
            ("n", "ann"),
            ("t", "h2/tcp/9"),
            ("m", "bob"),
            ("h", "10:00:00"),
            ("x", "hi"),
        ]))
        .unwrap();
        assert_eq!(msg.owner(), "h1/web/3");
        assert!(matches!(msg, Entry::Msg { target_name, .. } if target_name == "bob"));
        assert!(Entry::parse(&fields(&[("k", "all"), ("o", "a/b/1"), ("n", "x"), ("h", "t")])).is_none());
        assert!(Entry::parse(&fields(&[("k", "new"), ("o", "a/b/1"), ("n", "x")])).is_none());
    }
}
