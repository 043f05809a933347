//! Unit tests of the chat state: every row of PROTOCOL.md §2, names, logouts.

use super::*;
use crate::chat::command::SyntaxError;

pub(super) const NOW: Now<'static> = Now {
    time: "12:00:00",
    micros: 1,
};

pub(super) fn key(frontend: FrontendId, session: SessionId) -> SessionKey {
    SessionKey { frontend, session }
}

/// Drives a `Chat` and flattens deliveries into (recipient, plain text) pairs.
pub(super) struct Harness {
    pub(super) chat: Chat,
    pub(super) out: Vec<Output>,
}

impl Harness {
    pub(super) fn new() -> Self {
        Self {
            chat: Chat::new(),
            out: Vec::new(),
        }
    }

    pub(super) fn open(&mut self, k: SessionKey) {
        assert!(self.chat.open(k));
    }

    pub(super) fn send(&mut self, k: SessionKey, line: &str) -> Vec<(SessionKey, String)> {
        self.out.clear();
        assert!(self.chat.input(k, line, NOW, &mut self.out));
        self.deliveries()
    }

    pub(super) fn deliveries(&self) -> Vec<(SessionKey, String)> {
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

    pub(super) fn login(&mut self, k: SessionKey, name: &str) {
        self.open(k);
        let got = self.send(k, &format!("login {name}"));
        assert!(got.contains(&(k, format!("[SYSTEM INFO] - [{name}] login to chat."))));
    }

    /// The one reply `line` gets from `k`, checked to go to `k` alone.
    pub(super) fn reply(&mut self, k: SessionKey, line: &str) -> String {
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
    // Both of ADMIN's keys are let go too: its look-alike under either is free.
    h.send(key(1, 2), "logout");
    let d = key(2, 2);
    h.open(d);
    let got = h.send(d, "login ADMlN");
    assert!(
        got.contains(&(d, "[SYSTEM INFO] - [ADMlN] login to chat.".into())),
        "{got:?}"
    );
    let e = key(2, 3);
    h.open(e);
    assert_eq!(h.reply(e, "login ADMIN"), "[ERROR] - Username already taken!");
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
fn duplicate_open_changes_nothing() {
    let mut h = Harness::new();
    h.login(key(1, 1), "a");
    assert!(!h.chat.open(key(1, 1)));
    assert_eq!(h.reply(key(1, 1), "/whoami"), "a");
}
