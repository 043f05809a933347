//! The chat state: sessions of every frontend, unique names, login order. No I/O.
//!
//! A name is unique up to case and look-alikes ([`name::Keys`]); a user keeps the spelling they
//! logged in with, and that spelling is what everyone sees.
//!
//! [`Chat`] is what the kernel process owns. Each method takes one thing that happened (a session
//! opened, a line arrived, a session or a whole frontend went away) and appends [`Output`]s: events
//! with their recipients already grouped by frontend, so the kernel sends one frame per frontend per
//! event. What happens to a frontend's sessions when its connection ends or it says hello again is
//! in [`rejoin`]. A kernel that is its host's member of a cluster keeps a [`replica`] instead: the
//! same state, fed by the events every node reads from Redis.

mod rejoin;
mod replica;

use std::collections::{BTreeMap, HashMap, hash_map::Entry};

use super::command::{self, Command};
use super::event::{ChatError, Event};
use super::name::{self, Keys};

/// Which frontend connection of the kernel; assigned by the kernel, never reused while it runs.
pub type FrontendId = u32;
/// A session (one client connection) within its frontend; assigned by the frontend.
pub type SessionId = u64;

/// A session anywhere in the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub frontend: FrontendId,
    pub session: SessionId,
}

/// A logged-in session's name and its login sequence number.
///
/// `seq` orders logins (oldest first in `userlist`) and, after a kernel restart, decides which of
/// two sessions claiming one name keeps it. It is the login's wall-clock time in microseconds,
/// bumped to stay strictly increasing, so it stays meaningful across kernel restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub name: String,
    pub seq: u64,
}

/// The kernel's clock reading for one input: `time` is `HH:MM:SS` local time, `micros` the Unix
/// time in microseconds. Passed in so that the state stays pure and testable.
#[derive(Debug, Clone, Copy)]
pub struct Now<'a> {
    pub time: &'a str,
    pub micros: u64,
}

/// Recipients of one event, grouped by frontend, in login order within each frontend.
pub type Recipients = Vec<(FrontendId, Vec<SessionId>)>;

/// What the kernel must send as a result of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Show `event` to these sessions.
    Deliver { event: Event, to: Recipients },
    /// Show `event` to every logged-in session (listed in `to`): a frontend that mirrors who is
    /// logged in needs no list.
    Broadcast { event: Event, to: Recipients },
    /// The session logged in or out: its frontend mirrors this so that it can rebuild a restarted
    /// kernel's state in its hello.
    Named { key: SessionKey, login: Option<Login> },
    /// Close the session's connection once everything before this has been delivered (after
    /// `logout`).
    Close(SessionKey),
}

#[derive(Debug, Default)]
struct Session {
    /// Login sequence number while logged in; the name is in `Chat::online`.
    login: Option<u64>,
    /// Logged out by `logout` and about to be closed: further input is ignored.
    closing: bool,
}

/// A logged-in user.
#[derive(Debug)]
struct User {
    /// As spelled at login; shown to everyone. What it is held under in `Chat::holders` is
    /// worked out again at logout ([`Keys::of`]) rather than kept: some 120 bytes less for each
    /// login, for a few microseconds when it ends.
    name: String,
    session: SessionKey,
}

/// The whole chat state.
#[derive(Debug, Default)]
pub struct Chat {
    sessions: HashMap<SessionKey, Session>,
    /// Every key of every logged-in name to that login's sequence number.
    holders: HashMap<String, u64>,
    /// Logged-in users in login order.
    online: BTreeMap<u64, User>,
    /// How many of them each frontend has.
    online_on: HashMap<FrontendId, usize>,
    last_seq: u64,
}

impl Chat {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new session, logged out. Returns false if it already existed (nothing changes).
    pub fn open(&mut self, key: SessionKey) -> bool {
        match self.sessions.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(Session::default());
                true
            }
        }
    }

    /// Handles one input line of a session. Returns false if the session is unknown.
    pub fn input(&mut self, key: SessionKey, line: &str, now: Now<'_>, out: &mut Vec<Output>) -> bool {
        let Some(session) = self.sessions.get(&key) else {
            return false;
        };
        if session.closing {
            return true;
        }
        let login = session.login;
        let Some(parsed) = command::parse(line) else {
            return true;
        };
        let command = match parsed {
            Ok(command) => command,
            Err(error) => {
                reply(out, key, Event::Error(ChatError::Syntax(error)));
                return true;
            }
        };
        let Some(seq) = login else {
            match command {
                Command::Login { name } => self.login(key, name, now, out),
                Command::Help => reply(out, key, Event::Help),
                _ => reply(out, key, Event::Error(ChatError::FirstLogin)),
            }
            return true;
        };
        let me = &self.online[&seq].name;
        match command {
            Command::Login { .. } => reply(out, key, Event::Error(ChatError::AlreadyLogin)),
            Command::Logout => {
                let name = me.clone();
                out.push(Output::Broadcast {
                    event: Event::Logout { name },
                    to: self.everyone(),
                });
                self.logout(key, out);
                if let Some(session) = self.sessions.get_mut(&key) {
                    session.closing = true;
                }
                out.push(Output::Close(key));
            }
            Command::Msg { name, text } => match self.find(name) {
                None => reply(out, key, Event::Error(ChatError::NotFound(name.to_string()))),
                Some(target) => {
                    let mut to = vec![(key.frontend, vec![key.session])];
                    if target.session != key {
                        add(&mut to, target.session);
                    }
                    let event = Event::Private {
                        time: now.time.to_string(),
                        from: me.clone(),
                        to: target.name.clone(),
                        text,
                    };
                    out.push(Output::Deliver { event, to });
                }
            },
            Command::MsgAll { text } => {
                let event = Event::Public {
                    time: now.time.to_string(),
                    from: me.clone(),
                    text,
                };
                out.push(Output::Broadcast {
                    event,
                    to: self.everyone(),
                });
            }
            Command::WhoAmI { raw } => {
                let name = me.clone();
                reply(out, key, Event::WhoAmI { name, raw });
            }
            Command::UserList { raw } => {
                let names = self.online.values().map(|user| user.name.clone()).collect();
                reply(out, key, Event::UserList { names, raw });
            }
            Command::Help => reply(out, key, Event::Help),
        }
        true
    }

    /// The session's connection closed. A logged-in user's logout is broadcast to the others.
    pub fn close(&mut self, key: SessionKey, out: &mut Vec<Output>) {
        let Some(session) = self.sessions.remove(&key) else {
            return;
        };
        if let Some(seq) = session.login {
            let name = self.go_offline(seq).expect("logged-in session is online");
            out.push(Output::Broadcast {
                event: Event::Logout { name },
                to: self.everyone(),
            });
        }
    }

    /// Logged-in names in login order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.online.values().map(|user| user.name.as_str())
    }

    /// The sessions of `frontend`.
    pub fn sessions_on(&self, frontend: FrontendId) -> Vec<SessionId> {
        self.sessions
            .keys()
            .filter(|k| k.frontend == frontend)
            .map(|k| k.session)
            .collect()
    }

    /// How many users are logged in on `frontend`.
    pub fn users_on(&self, frontend: FrontendId) -> usize {
        self.online_on.get(&frontend).copied().unwrap_or(0)
    }

    fn login(&mut self, key: SessionKey, name: &str, now: Now<'_>, out: &mut Vec<Output>) {
        if !name::is_valid(name) {
            reply(out, key, Event::Error(ChatError::InvalidUsername));
            return;
        }
        let keys = Keys::of(name);
        if keys.iter().any(|k| self.holders.contains_key(k)) {
            reply(out, key, Event::Error(ChatError::UsernameTaken));
            return;
        }
        let seq = self.free_seq(now.micros.max(self.last_seq + 1));
        self.last_seq = seq;
        self.bind(key, name.to_string(), keys, seq, out);
        out.push(Output::Broadcast {
            event: Event::Login { name: name.to_string() },
            to: self.everyone(),
        });
    }

    /// A sequence number at or after `seq` that no login holds (two frontends' hellos may carry
    /// equal ones).
    fn free_seq(&self, mut seq: u64) -> u64 {
        while self.online.contains_key(&seq) {
            seq += 1;
        }
        seq
    }

    /// The logged-in user `typed` names: the one holding one of its keys, tried in order. A name
    /// that is not valid names nobody (and is not worth a skeleton).
    fn find(&self, typed: &str) -> Option<&User> {
        if !name::is_valid(typed) {
            return None;
        }
        let seq = Keys::of(typed).iter().find_map(|k| self.holders.get(k))?;
        Some(&self.online[seq])
    }

    fn bind(&mut self, key: SessionKey, name: String, keys: Keys, seq: u64, out: &mut Vec<Output>) {
        self.sessions.get_mut(&key).expect("session is open").login = Some(seq);
        for k in keys.iter() {
            self.holders.insert(k.to_string(), seq);
        }
        self.online.insert(
            seq,
            User {
                name: name.clone(),
                session: key,
            },
        );
        *self.online_on.entry(key.frontend).or_default() += 1;
        out.push(Output::Named {
            key,
            login: Some(Login { name, seq }),
        });
    }

    /// Logs a session out without telling anyone but its frontend.
    fn logout(&mut self, key: SessionKey, out: &mut Vec<Output>) {
        let Some(seq) = self.sessions.get_mut(&key).and_then(|s| s.login.take()) else {
            return;
        };
        self.go_offline(seq);
        out.push(Output::Named { key, login: None });
    }

    /// Takes a login off the online list and frees its keys; returns its name.
    fn go_offline(&mut self, seq: u64) -> Option<String> {
        let user = self.online.remove(&seq)?;
        for k in Keys::of(&user.name).iter() {
            self.holders.remove(k);
        }
        let frontend = user.session.frontend;
        if let Some(count) = self.online_on.get_mut(&frontend) {
            *count -= 1;
            if *count == 0 {
                self.online_on.remove(&frontend);
            }
        }
        Some(user.name)
    }

    /// Every logged-in session, grouped by frontend.
    fn everyone(&self) -> Recipients {
        let mut to = Recipients::new();
        for user in self.online.values() {
            add(&mut to, user.session);
        }
        to
    }
}

fn reply(out: &mut Vec<Output>, key: SessionKey, event: Event) {
    out.push(Output::Deliver {
        event,
        to: vec![(key.frontend, vec![key.session])],
    });
}

fn add(to: &mut Recipients, key: SessionKey) {
    // Few frontends: a linear search beats hashing, and the last group is the likeliest.
    match to.iter_mut().rev().find(|(frontend, _)| *frontend == key.frontend) {
        Some((_, sessions)) => sessions.push(key.session),
        None => to.push((key.frontend, vec![key.session])),
    }
}

#[cfg(test)]
mod tests;
