//! The chat state: sessions of every frontend, unique names, login order. No I/O.
//!
//! A name is unique up to case and look-alikes ([`name::Keys`]); a user keeps the spelling they
//! logged in with, and that spelling is what everyone sees.
//!
//! [`Chat`] is what the kernel process owns. Each method takes one thing that happened (a session
//! opened, a line arrived, a session or a whole frontend went away) and appends [`Output`]s: events
//! with their recipients already grouped by frontend, so the kernel sends one frame per frontend per
//! event.

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
    /// As spelled at login; shown to everyone.
    name: String,
    /// What the name is held under in `Chat::holders`; computed once, at login.
    keys: Keys,
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

    /// A frontend went away with all its sessions: each of its users is logged out once, in login
    /// order, and every remaining user is told once per user.
    pub fn frontend_gone(&mut self, frontend: FrontendId, out: &mut Vec<Output>) {
        self.sessions.retain(|key, _| key.frontend != frontend);
        let gone: Vec<u64> = self
            .online
            .iter()
            .filter(|(_, user)| user.session.frontend == frontend)
            .map(|(seq, _)| *seq)
            .collect();
        // Remove them all before telling anyone, so no logout is sent to a session that is gone.
        let names: Vec<String> = gone
            .iter()
            .map(|seq| self.go_offline(*seq).expect("listed above"))
            .collect();
        for name in names {
            out.push(Output::Broadcast {
                event: Event::Logout { name },
                to: self.everyone(),
            });
        }
    }

    /// Rebuilds a frontend's sessions from its hello after a kernel restart.
    ///
    /// Nobody is told of restored logins: they were already announced. If two names clash (the
    /// same up to case and look-alikes, as at login), the earlier login (lower `seq`) keeps its
    /// name and the other session is told `Username already taken!` and left logged out.
    pub fn restore(&mut self, frontend: FrontendId, sessions: Vec<(SessionId, Option<Login>)>, out: &mut Vec<Output>) {
        for (session, login) in sessions {
            let key = SessionKey { frontend, session };
            if !self.open(key) {
                continue;
            }
            let Some(Login { name, seq }) = login else {
                continue;
            };
            if !name::is_valid(&name) {
                out.push(Output::Named { key, login: None });
                reply(out, key, Event::Error(ChatError::InvalidUsername));
                continue;
            }
            let seq = self.free_seq(seq);
            let keys = Keys::of(&name);
            // One name's two keys may be held by two users.
            let mut held: Vec<u64> = keys.iter().filter_map(|k| self.holders.get(k).copied()).collect();
            held.sort_unstable();
            held.dedup();
            if held.first().is_some_and(|&first| first <= seq) {
                out.push(Output::Named { key, login: None });
                reply(out, key, Event::Error(ChatError::UsernameTaken));
                continue;
            }
            for later in held {
                let loser = self.online[&later].session;
                self.logout(loser, out);
                reply(out, loser, Event::Error(ChatError::UsernameTaken));
            }
            self.last_seq = self.last_seq.max(seq);
            self.bind(key, name, keys, seq, out);
        }
    }

    /// A frontend the kernel let go of (it stopped reading, or went silent) says hello again on a
    /// new connection: its sessions move from `old` to `new` as they were, and nobody is told.
    ///
    /// Where the hello and the kernel disagree (the frontend missed frames when it was let go),
    /// the kernel's record wins: a session the hello no longer lists is closed (a logged-in user
    /// logged out, for everyone, once); a login the frontend has wrong is corrected with a
    /// `Named`; a session the kernel does not know is restored as after a kernel restart.
    pub fn reattach(
        &mut self,
        old: FrontendId,
        new: FrontendId,
        sessions: Vec<(SessionId, Option<Login>)>,
        out: &mut Vec<Output>,
    ) {
        let moved: Vec<SessionKey> = self.sessions.keys().filter(|k| k.frontend == old).copied().collect();
        for key in moved {
            let session = self.sessions.remove(&key).expect("listed above");
            self.sessions.insert(SessionKey { frontend: new, ..key }, session);
        }
        for user in self.online.values_mut() {
            if user.session.frontend == old {
                user.session.frontend = new;
            }
        }
        if let Some(count) = self.online_on.remove(&old) {
            *self.online_on.entry(new).or_default() += count;
        }
        let listed: HashMap<SessionId, ()> = sessions.iter().map(|(id, _)| (*id, ())).collect();
        let mut gone: Vec<SessionKey> = self
            .sessions
            .keys()
            .filter(|k| k.frontend == new && !listed.contains_key(&k.session))
            .copied()
            .collect();
        gone.sort_unstable();
        for key in gone {
            self.close(key, out);
        }
        let mut unknown = Vec::new();
        for (session, login) in sessions {
            let key = SessionKey { frontend: new, session };
            let Some(known) = self.sessions.get(&key) else {
                unknown.push((session, login));
                continue;
            };
            let kernel = known.login.map(|seq| Login {
                name: self.online[&seq].name.clone(),
                seq,
            });
            if kernel != login {
                out.push(Output::Named { key, login: kernel });
            }
        }
        self.restore(new, unknown, out);
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

    /// Restores a frontend whose sessions were logged out while it was away (it hung past its
    /// grace, then came back): the sessions in `logged_out` are restored logged out, and each
    /// user is told the logout everyone else saw; the rest as [`restore`](Self::restore) does.
    pub fn restore_after_logout(
        &mut self,
        frontend: FrontendId,
        sessions: Vec<(SessionId, Option<Login>)>,
        logged_out: &std::collections::HashSet<SessionId>,
        out: &mut Vec<Output>,
    ) {
        let mut told = Vec::new();
        let sessions = sessions
            .into_iter()
            .map(|(session, login)| match login {
                Some(login) if logged_out.contains(&session) => {
                    told.push((session, login.name));
                    (session, None)
                }
                other => (session, other),
            })
            .collect();
        self.restore(frontend, sessions, out);
        for (session, name) in told {
            let key = SessionKey { frontend, session };
            out.push(Output::Named { key, login: None });
            reply(out, key, Event::Logout { name });
        }
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
                keys,
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
        for k in user.keys.iter() {
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
mod tests {
    use super::*;
    use crate::chat::command::SyntaxError;

    const NOW: Now<'static> = Now {
        time: "12:00:00",
        micros: 1,
    };

    fn key(frontend: FrontendId, session: SessionId) -> SessionKey {
        SessionKey { frontend, session }
    }

    /// Drives a `Chat` and flattens deliveries into (recipient, plain text) pairs.
    struct Harness {
        chat: Chat,
        out: Vec<Output>,
    }

    impl Harness {
        fn new() -> Self {
            Self {
                chat: Chat::new(),
                out: Vec::new(),
            }
        }

        fn open(&mut self, k: SessionKey) {
            assert!(self.chat.open(k));
        }

        fn send(&mut self, k: SessionKey, line: &str) -> Vec<(SessionKey, String)> {
            self.out.clear();
            assert!(self.chat.input(k, line, NOW, &mut self.out));
            self.deliveries()
        }

        fn deliveries(&self) -> Vec<(SessionKey, String)> {
            let mut all = Vec::new();
            for output in &self.out {
                if let Output::Deliver { event, to } | Output::Broadcast { event, to } = output {
                    for (frontend, sessions) in to {
                        for session in sessions {
                            all.push((key(*frontend, *session), event.plain()));
                        }
                    }
                }
            }
            all
        }

        fn login(&mut self, k: SessionKey, name: &str) {
            self.open(k);
            let got = self.send(k, &format!("login {name}"));
            assert!(got.contains(&(k, format!("[SYSTEM INFO] - [{name}] login to chat."))));
        }

        /// The one reply `line` gets from `k`, checked to go to `k` alone.
        fn reply(&mut self, k: SessionKey, line: &str) -> String {
            let got = self.send(k, line);
            assert_eq!(got.len(), 1, "{line:?} gave {got:?}");
            assert_eq!(got[0].0, k);
            got[0].1.clone()
        }
    }

    #[test]
    fn logged_out_column() {
        let mut h = Harness::new();
        let a = key(1, 1);
        h.open(a);
        for line in [
            "logout",
            "msg bob hi",
            "msgall hi",
            "whoami",
            "/whoami",
            "userlist",
            "/userlist",
        ] {
            assert_eq!(h.reply(a, line), "[ERROR] - First login!", "{line}");
        }
        assert!(h.reply(a, "help").starts_with("[INFO] - commands: login <name>"));
        assert_eq!(h.reply(a, "login b[a]d"), "[ERROR] - invalid username");
        h.login(key(2, 1), "bob");
        assert_eq!(h.reply(a, "login bob"), "[ERROR] - Username already taken!");
        let got = h.send(a, "login alice");
        assert_eq!(
            got,
            [
                (key(2, 1), "[SYSTEM INFO] - [alice] login to chat.".into()),
                (a, "[SYSTEM INFO] - [alice] login to chat.".into()),
            ]
        );
    }

    #[test]
    fn logged_in_column() {
        let mut h = Harness::new();
        let (a, b) = (key(1, 1), key(2, 7));
        h.login(a, "alice");
        h.login(b, "bob");
        assert_eq!(h.reply(a, "login carol"), "[ERROR] - Already login!");
        assert_eq!(
            h.send(a, "msg bob hi  you"),
            [
                (a, "[12:00:00][alice][->][bob]: hi  you".into()),
                (b, "[12:00:00][alice][->][bob]: hi  you".into()),
            ]
        );
        assert_eq!(h.reply(a, "msg zed hi"), "[ERROR] - [zed] not found!");
        let got = h.send(b, "msgall hey");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, text)| text == "[12:00:00][bob]: hey"));
        assert_eq!(h.reply(a, "whoami"), "[INFO] - alice");
        assert_eq!(h.reply(a, "/whoami"), "alice");
        assert_eq!(h.reply(a, "userlist"), "[INFO] - ['alice', 'bob']");
        assert_eq!(h.reply(a, "/userlist"), "['alice', 'bob']");
        assert!(h.reply(a, "help").starts_with("[INFO] - commands:"));
        let got = h.send(a, "logout");
        assert_eq!(got.len(), 2);
        assert!(
            got.iter()
                .all(|(_, text)| text == "[SYSTEM INFO] - [alice] logout from chat.")
        );
        assert!(h.out.contains(&Output::Close(a)));
        assert!(h.out.contains(&Output::Named { key: a, login: None }));
        // The name is free again; the leaving session's further input is ignored.
        assert!(h.send(a, "whoami").is_empty());
        assert_eq!(h.reply(b, "userlist"), "[INFO] - ['bob']");
    }

    #[test]
    fn syntax_errors_come_first_whatever_the_login_state() {
        let mut h = Harness::new();
        let (out, inn) = (key(1, 1), key(1, 2));
        h.open(out);
        h.login(inn, "bob");
        let cases = [
            ("nope", SyntaxError::UnknownCommand),
            ("login", SyntaxError::RequireUsername),
            ("login a b", SyntaxError::OverageInfo),
            ("msg", SyntaxError::RequireUsername),
            ("msg bob", SyntaxError::EmptyMessage),
            ("msgall", SyntaxError::EmptyMessage),
            ("logout x", SyntaxError::OverageInfo),
        ];
        for (line, error) in cases {
            let text = Event::Error(ChatError::Syntax(error)).plain();
            assert_eq!(h.reply(out, line), text, "{line}");
            assert_eq!(h.reply(inn, line), text, "{line}");
        }
    }

    #[test]
    fn commands_in_any_case_work_and_names_and_text_keep_theirs() {
        let mut h = Harness::new();
        let (a, b) = (key(1, 1), key(1, 2));
        h.open(a);
        assert_eq!(
            h.send(a, "LOGIN Alice"),
            [(a, "[SYSTEM INFO] - [Alice] login to chat.".to_string())]
        );
        h.login(b, "bob");
        assert_eq!(h.reply(a, "/WHOAMI"), "Alice");
        assert_eq!(h.reply(a, "UserList"), "[INFO] - ['Alice', 'bob']");
        let got = h.send(a, "Msg BOB Hi There");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter()
                .all(|(_, text)| text == "[12:00:00][Alice][->][bob]: Hi There"),
            "{got:?}"
        );
        assert_eq!(h.reply(b, "LOGIN x"), "[ERROR] - Already login!");
    }

    #[test]
    fn login_broadcast_reaches_other_frontends() {
        let mut h = Harness::new();
        let (a, b, c) = (key(1, 1), key(2, 1), key(3, 1));
        h.login(a, "a");
        h.login(b, "b");
        h.open(c);
        let got = h.send(c, "login c");
        let to: Vec<_> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(to, [a, b, c]);
        // One group per frontend.
        let Output::Broadcast { to, .. } = h.out.last().unwrap() else {
            panic!()
        };
        assert_eq!(to, &vec![(1, vec![1]), (2, vec![1]), (3, vec![1])]);
    }

    #[test]
    fn msg_to_oneself_is_delivered_once() {
        let mut h = Harness::new();
        let a = key(1, 1);
        h.login(a, "a");
        assert_eq!(h.reply(a, "msg a note"), "[12:00:00][a][->][a]: note");
    }

    #[test]
    fn userlist_is_in_login_order() {
        let mut h = Harness::new();
        h.login(key(2, 1), "zed");
        h.login(key(1, 1), "amy");
        h.login(key(3, 1), "mo");
        assert_eq!(h.reply(key(1, 1), "/userlist"), "['zed', 'amy', 'mo']");
        h.send(key(2, 1), "logout");
        h.login(key(2, 2), "zed");
        assert_eq!(h.reply(key(1, 1), "/userlist"), "['amy', 'mo', 'zed']");
    }

    #[test]
    fn names_are_unique_across_frontends() {
        let mut h = Harness::new();
        h.login(key(1, 1), "bob");
        h.open(key(2, 1));
        assert_eq!(h.reply(key(2, 1), "login bob"), "[ERROR] - Username already taken!");
        // Case does not make another user (it did in the original).
        assert_eq!(h.reply(key(2, 1), "login Bob"), "[ERROR] - Username already taken!");
    }

    #[test]
    fn names_are_unique_up_to_case_and_look_alikes() {
        let mut h = Harness::new();
        h.login(key(1, 1), "alice");
        h.login(key(1, 2), "ADMIN");
        let c = key(2, 1);
        h.open(c);
        for taken in [
            "Alice",
            "ALICE",
            "\u{430}lice", // Cyrillic а
            "\u{391}LICE", // Greek capital alpha
            "ADMlN",       // small L for capital I
            "admin",
        ] {
            assert_eq!(
                h.reply(c, &format!("login {taken}")),
                "[ERROR] - Username already taken!",
                "{taken}"
            );
        }
        for invalid in [
            "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}",      // fullwidth
            "\u{1D41A}\u{1D425}\u{1D422}\u{1D41C}\u{1D41E}", // mathematical bold
            "alice\u{3164}",                                 // Hangul filler appended
            "\u{3164}",                                      // and alone
            "al\u{200D}ice",                                 // zero-width joiner inside
            "bo\u{200B}b",                                   // zero-width space inside
        ] {
            assert_eq!(
                h.reply(c, &format!("login {invalid}")),
                "[ERROR] - invalid username",
                "{invalid:?}"
            );
        }
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["alice", "ADMIN"]);
        // Once alice leaves, a look-alike of her name is free, spelled as typed.
        h.send(key(1, 1), "logout");
        let got = h.send(c, "login \u{430}lice");
        assert!(got.contains(&(c, "[SYSTEM INFO] - [\u{430}lice] login to chat.".into())));
        assert_eq!(h.reply(c, "/whoami"), "\u{430}lice");
    }

    #[test]
    fn a_user_keeps_their_spelling() {
        let mut h = Harness::new();
        let (a, b) = (key(1, 1), key(2, 1));
        h.login(a, "Alice");
        h.login(b, "bob");
        assert_eq!(h.reply(a, "whoami"), "[INFO] - Alice");
        assert_eq!(h.reply(b, "/userlist"), "['Alice', 'bob']");
        // The target is found by key and shown as they spell themselves.
        assert_eq!(
            h.send(b, "msg ALICE hi"),
            [
                (b, "[12:00:00][bob][->][Alice]: hi".into()),
                (a, "[12:00:00][bob][->][Alice]: hi".into()),
            ]
        );
        assert_eq!(
            h.send(a, "msg B\u{43E}B yo"),
            [
                (a, "[12:00:00][Alice][->][bob]: yo".into()),
                (b, "[12:00:00][Alice][->][bob]: yo".into()),
            ]
        );
        assert_eq!(h.reply(a, "msg alice me"), "[12:00:00][Alice][->][Alice]: me");
        // Not found shows what the sender typed.
        assert_eq!(h.reply(b, "msg ALICIA hi"), "[ERROR] - [ALICIA] not found!");
        assert_eq!(
            h.reply(b, "msg alice\u{3164} hi"),
            "[ERROR] - [alice\u{3164}] not found!"
        );
        assert_eq!(
            h.send(a, "logout"),
            [
                (a, "[SYSTEM INFO] - [Alice] logout from chat.".into()),
                (b, "[SYSTEM INFO] - [Alice] logout from chat.".into()),
            ]
        );
        // Her keys went with her.
        h.login(key(3, 1), "alice");
    }

    #[test]
    fn control_characters_never_reach_others() {
        let mut h = Harness::new();
        h.login(key(1, 1), "a");
        h.login(key(2, 1), "b");
        let got = h.send(key(1, 1), "msg b \x1b[2Jhi\x07");
        assert_eq!(got[1], (key(2, 1), "[12:00:00][a][->][b]: [2Jhi".into()));
    }

    #[test]
    fn slash_prefix_and_empty_lines() {
        let mut h = Harness::new();
        let a = key(1, 1);
        h.open(a);
        assert!(h.send(a, "").is_empty());
        assert!(h.send(a, "   ").is_empty());
        assert!(h.out.is_empty());
        let got = h.send(a, "/login amy");
        assert_eq!(got, [(a, "[SYSTEM INFO] - [amy] login to chat.".into())]);
        assert!(h.send(a, " \t").is_empty());
        assert_eq!(h.reply(a, "/whoami"), "amy");
    }

    #[test]
    fn closing_while_logged_in_broadcasts_one_logout() {
        let mut h = Harness::new();
        let (a, b) = (key(1, 1), key(2, 1));
        h.login(a, "a");
        h.login(b, "b");
        h.out.clear();
        h.chat.close(a, &mut h.out);
        assert_eq!(h.deliveries(), [(b, "[SYSTEM INFO] - [a] logout from chat.".into())]);
        h.out.clear();
        h.chat.close(a, &mut h.out);
        assert!(h.out.is_empty());
        // Closing after `logout` says nothing more.
        h.send(b, "logout");
        h.out.clear();
        h.chat.close(b, &mut h.out);
        assert!(h.out.is_empty());
        assert_eq!(h.chat.names().count(), 0);
    }

    #[test]
    fn closing_a_logged_out_session_says_nothing() {
        let mut h = Harness::new();
        h.login(key(1, 1), "a");
        h.open(key(1, 2));
        h.out.clear();
        h.chat.close(key(1, 2), &mut h.out);
        assert!(h.out.is_empty());
    }

    #[test]
    fn a_frontend_going_away_logs_out_each_of_its_users_once() {
        let mut h = Harness::new();
        h.login(key(1, 1), "a1");
        h.login(key(2, 1), "b1");
        h.login(key(1, 2), "a2");
        h.open(key(1, 3));
        h.login(key(3, 1), "c1");
        h.out.clear();
        h.chat.frontend_gone(1, &mut h.out);
        let got = h.deliveries();
        assert_eq!(
            got,
            [
                (key(2, 1), "[SYSTEM INFO] - [a1] logout from chat.".into()),
                (key(3, 1), "[SYSTEM INFO] - [a1] logout from chat.".into()),
                (key(2, 1), "[SYSTEM INFO] - [a2] logout from chat.".into()),
                (key(3, 1), "[SYSTEM INFO] - [a2] logout from chat.".into()),
            ]
        );
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["b1", "c1"]);
        assert!(!h.chat.input(key(1, 3), "help", NOW, &mut h.out));
        // Its names are free again.
        h.login(key(2, 2), "a1");
    }

    #[test]
    fn a_frontend_let_go_of_comes_back_and_nobody_notices() {
        let mut h = Harness::new();
        h.login(key(1, 1), "ann");
        h.login(key(1, 2), "bob");
        h.open(key(1, 3));
        h.login(key(2, 1), "cy");
        h.login(key(1, 4), "dee");
        let login = |name: &str, seq| Some(Login { name: name.into(), seq });
        let seq_of = |h: &Harness, name: &str| {
            h.chat
                .online
                .iter()
                .find(|(_, u)| u.name == name)
                .map(|(s, _)| *s)
                .unwrap()
        };
        let (ann, bob, dee) = (seq_of(&h, "ann"), seq_of(&h, "bob"), seq_of(&h, "dee"));
        h.out.clear();
        // Frontend 1 comes back as connection 7. Its hello: ann as the kernel has her; bob logged
        // out (a Named frame was lost); session 3 gone (it closed meanwhile); dee as she is; and a
        // session 5 the kernel never heard of, logged out.
        h.chat.reattach(
            1,
            7,
            vec![(1, login("ann", ann)), (2, None), (4, login("dee", dee)), (5, None)],
            &mut h.out,
        );
        assert!(h.deliveries().is_empty(), "{:?}", h.out);
        assert_eq!(
            h.out,
            [Output::Named {
                key: key(7, 2),
                login: login("bob", bob)
            }]
        );
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["ann", "bob", "cy", "dee"]);
        assert_eq!((h.chat.users_on(1), h.chat.users_on(7)), (0, 3));
        // The sessions live on under the new connection.
        assert_eq!(h.reply(key(7, 1), "/whoami"), "ann");
        assert_eq!(h.reply(key(7, 5), "whoami"), "[ERROR] - First login!");
        assert!(!h.chat.input(key(1, 1), "whoami", NOW, &mut h.out));
        // A session the hello does not list is closed: dee's user is logged out, for everyone.
        h.out.clear();
        h.chat
            .reattach(7, 8, vec![(1, login("ann", ann)), (2, login("bob", bob))], &mut h.out);
        assert_eq!(
            h.deliveries(),
            [
                (key(8, 1), "[SYSTEM INFO] - [dee] logout from chat.".into()),
                (key(8, 2), "[SYSTEM INFO] - [dee] logout from chat.".into()),
                (key(2, 1), "[SYSTEM INFO] - [dee] logout from chat.".into()),
            ]
        );
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["ann", "bob", "cy"]);
    }

    #[test]
    fn a_frontend_back_after_its_users_were_logged_out_is_told_so() {
        let mut h = Harness::new();
        h.login(key(1, 1), "ann");
        h.login(key(2, 1), "bob");
        h.open(key(1, 2));
        let gone: std::collections::HashSet<_> = h.chat.sessions_on(1).into_iter().collect();
        h.out.clear();
        h.chat.frontend_gone(1, &mut h.out);
        assert_eq!(
            h.deliveries(),
            [(key(2, 1), "[SYSTEM INFO] - [ann] logout from chat.".into())]
        );
        h.out.clear();
        let login = Some(Login {
            name: "ann".into(),
            seq: 1,
        });
        h.chat
            .restore_after_logout(3, vec![(1, login), (2, None), (5, None)], &gone, &mut h.out);
        assert_eq!(
            h.deliveries(),
            [(key(3, 1), "[SYSTEM INFO] - [ann] logout from chat.".into())]
        );
        assert!(h.out.contains(&Output::Named {
            key: key(3, 1),
            login: None
        }));
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["bob"]);
        assert_eq!(h.reply(key(3, 1), "whoami"), "[ERROR] - First login!");
        let got = h.send(key(3, 2), "login ann");
        assert!(got.contains(&(key(3, 2), "[SYSTEM INFO] - [ann] login to chat.".into())));
    }

    #[test]
    fn duplicate_open_changes_nothing() {
        let mut h = Harness::new();
        h.login(key(1, 1), "a");
        assert!(!h.chat.open(key(1, 1)));
        assert_eq!(h.reply(key(1, 1), "/whoami"), "a");
    }

    #[test]
    fn restore_rebuilds_names_and_order_and_settles_clashes() {
        let mut chat = Chat::new();
        let mut out = Vec::new();
        let login = |name: &str, seq| Some(Login { name: name.into(), seq });
        chat.restore(
            1,
            vec![(1, login("late", 30)), (2, login("bob", 20)), (3, None)],
            &mut out,
        );
        assert!(out.iter().all(|o| matches!(o, Output::Named { .. })));
        out.clear();
        // Frontend 2's bob logged in earlier: it keeps the name; frontend 1's bob is told.
        chat.restore(2, vec![(1, login("bob", 10)), (2, login("amy", 25))], &mut out);
        assert_eq!(chat.names().collect::<Vec<_>>(), ["bob", "amy", "late"]);
        assert!(out.contains(&Output::Named {
            key: key(1, 2),
            login: None
        }));
        assert!(out.contains(&Output::Deliver {
            event: Event::Error(ChatError::UsernameTaken),
            to: vec![(1, vec![2])],
        }));
        out.clear();
        // A later claim loses.
        chat.restore(3, vec![(1, login("amy", 26))], &mut out);
        assert!(out.contains(&Output::Deliver {
            event: Event::Error(ChatError::UsernameTaken),
            to: vec![(3, vec![1])],
        }));
        // Clashes are by key: a later `BOB` loses to bob, an earlier `Amy` wins over amy.
        out.clear();
        chat.restore(
            4,
            vec![
                (1, login("BOB", 15)),
                (2, login("Amy", 24)),
                (3, login("l\u{430}te", 5)),
            ],
            &mut out,
        );
        assert_eq!(chat.names().collect::<Vec<_>>(), ["l\u{430}te", "bob", "Amy"]);
        for loser in [key(4, 1), key(2, 2), key(1, 1)] {
            assert!(out.contains(&Output::Named {
                key: loser,
                login: None
            }));
            assert!(out.contains(&Output::Deliver {
                event: Event::Error(ChatError::UsernameTaken),
                to: vec![(loser.frontend, vec![loser.session])],
            }));
        }
        // New logins order after every restored one.
        out.clear();
        assert!(chat.input(key(1, 3), "login new", NOW, &mut out));
        assert_eq!(chat.names().last(), Some("new"));
        assert_eq!(chat.users_on(1), 1);
    }

    #[test]
    fn restore_settles_a_clash_with_two_holders_at_once() {
        let mut chat = Chat::new();
        let mut out = Vec::new();
        let login = |name: &str, seq| Some(Login { name: name.into(), seq });
        // `iris` and `lris` differ; `Iris` looks like `lris` and equals `iris` up to case.
        chat.restore(1, vec![(1, login("iris", 20)), (2, login("lris", 30))], &mut out);
        chat.restore(2, vec![(1, login("Iris", 25))], &mut out);
        assert_eq!(chat.names().collect::<Vec<_>>(), ["iris", "lris"]);
        out.clear();
        // An earlier claim wins over both holders.
        chat.restore(3, vec![(1, login("Iris", 10))], &mut out);
        assert_eq!(chat.names().collect::<Vec<_>>(), ["Iris"]);
        for loser in [key(1, 1), key(1, 2)] {
            assert!(out.contains(&Output::Named {
                key: loser,
                login: None
            }));
        }
        assert_eq!(chat.users_on(1), 0);
    }
}
