//! The member without Redis: the tests play Redis, answering its requests and feeding it entries.

use std::time::{Duration, Instant};

use super::super::entry::{Entry, Leave};
use super::super::scripts::Script;
use super::*;
use crate::chat::ChatError;

const T: FrontendId = 1;

fn ok(fields: &[&str]) -> Option<Reply> {
    Some(Reply::Ok(fields.iter().map(|f| f.to_string()).collect()))
}

fn id(s: &str) -> Id {
    s.parse().unwrap()
}

/// What the member showed, as (session, plain text), and the sessions it closed.
fn shown(emitted: &Emitted) -> Vec<(SessionId, String)> {
    let mut all = Vec::new();
    for (_, outputs) in emitted {
        for output in outputs {
            if let Output::Deliver { event, to } | Output::Broadcast { event, to } = output {
                for (frontend, sessions) in to {
                    if *frontend == T {
                        all.extend(sessions.iter().map(|s| (*s, event.plain())));
                    }
                }
            }
        }
    }
    all
}

/// A member of node `h1` that joined and read nobody logged in, with local frontend `t` (id
/// [`T`]) holding sessions 1 and 2.
fn ready() -> Member {
    let mut m = Member::new("h1", "i1");
    let join = m.take_requests();
    assert_eq!(join[0].script, Script::Join);
    let mut out = Emitted::new();
    m.answered(join[0].id, ok(&["e1", ""]), Instant::now(), &mut out);
    let users = m.take_requests();
    assert_eq!(users[0].script, Script::Users);
    assert!(!m.ready());
    m.answered(users[0].id, ok(&["0-0"]), Instant::now(), &mut out);
    assert!(m.ready());
    assert_eq!(m.reading().generation, 1);
    m.attach(T, "t", vec![(1, None), (2, None)], &mut out);
    m
}

/// A local line of session `session`, frame `frame`.
fn line(m: &mut Member, session: SessionId, frame: u64, text: &str) -> Emitted {
    let mut out = Emitted::new();
    m.arrived(T, frame);
    let key = SessionKey { frontend: T, session };
    m.line(key, (T, frame), 99, text, "10:00:00", &mut out);
    out
}

fn entry(m: &mut Member, at: &str, entry: Entry) -> Emitted {
    let mut out = Emitted::new();
    let generation = m.reading().generation;
    let epoch = m.epoch().unwrap_or_default().to_string();
    m.entries(generation, vec![(id(at), epoch, Some(entry))], &mut out);
    out
}

fn answer(m: &mut Member, request: &Request, reply: Option<Reply>) -> Emitted {
    let mut out = Emitted::new();
    m.answered(request.id, reply, Instant::now(), &mut out);
    out
}

/// Session 1 logs in as ann (frame 1): its script answers entry 5-0, which is read back.
fn ann_logged_in(m: &mut Member) {
    line(m, 1, 1, "login ann");
    let login = m.take_requests().pop().unwrap();
    answer(m, &login, ok(&["5-0"]));
    entry(m, "5-0", ann_in(10));
}

/// ann's login entry, at login order `seq`.
fn ann_in(seq: u64) -> Entry {
    Entry::In {
        owner: "h1/t/1".into(),
        name: "ann".into(),
        seq,
        silent: false,
    }
}

#[test]
fn a_sessions_lines_go_in_order_and_what_is_answered_here_waits_for_its_entries() {
    let mut m = ready();
    assert!(line(&mut m, 1, 1, "login ann").is_empty());
    let login = m.take_requests().pop().unwrap();
    assert_eq!(login.script, Script::Login);
    assert_eq!(&login.args[..3], ["e1", "h1", "i1"], "the common head");
    assert_eq!(
        &login.args[3..6],
        ["h1/t/1", "99", "1"],
        "owner, frontend process, frame"
    );
    // `whoami` waits for the login; the `msgall` after it waits for the `whoami`.
    assert!(line(&mut m, 1, 2, "whoami").is_empty());
    assert!(line(&mut m, 1, 3, "msgall hi").is_empty());
    assert!(m.take_requests().is_empty(), "the msgall waits behind the answer");
    // Its script ran: still no answer until the replica has the login.
    assert!(answer(&mut m, &login, ok(&["5-0"])).is_empty());
    assert_eq!(m.take_done(), [(T, 1)], "frame 1 is done (its effect is in Redis)");
    let out = entry(
        &mut m,
        "5-0",
        Entry::In {
            owner: "h1/t/1".into(),
            name: "ann".into(),
            seq: 10,
            silent: false,
        },
    );
    assert_eq!(
        shown(&out),
        [
            (1, "[SYSTEM INFO] - [ann] login to chat.".into()),
            (1, "[INFO] - ann".into())
        ]
    );
    let say = m.take_requests().pop().unwrap();
    assert_eq!(say.script, Script::Say);
    assert_eq!(m.take_done(), [(T, 2)]);
    answer(&mut m, &say, ok(&["6-0"]));
    assert_eq!(m.take_done(), [(T, 3)]);
}

#[test]
fn a_refusal_is_shown_in_its_place_and_an_unknown_target_is_named() {
    let mut m = ready();
    line(&mut m, 2, 1, "msg nobody hi");
    let say = m.take_requests().pop().unwrap();
    assert_eq!(say.args.last().map(String::as_str), Some("nobody"), "the name's key");
    let out = answer(&mut m, &say, Some(Reply::Refused(Refusal::NotFound)));
    assert_eq!(shown(&out), [(2, "[ERROR] - [nobody] not found!".into())]);
    line(&mut m, 2, 2, "login b[a]d");
    let login = m.take_requests().pop().unwrap();
    assert_eq!(
        login.args[6], "0",
        "not valid: refused by the script after the login check"
    );
    let out = answer(&mut m, &login, Some(Reply::Refused(Refusal::Invalid)));
    assert_eq!(shown(&out), [(2, "[ERROR] - invalid username".into())]);
    assert_eq!(
        shown(&line(&mut m, 2, 3, "whoami")),
        [(2, "[ERROR] - First login!".into())]
    );
}

#[test]
fn other_nodes_users_are_known_while_logged_in_and_their_messages_delivered() {
    let mut m = ready();
    ann_logged_in(&mut m);
    let bob = Entry::In {
        owner: "h2/w/4".into(),
        name: "bob".into(),
        seq: 11,
        silent: false,
    };
    assert_eq!(
        shown(&entry(&mut m, "6-0", bob)),
        [(1, "[SYSTEM INFO] - [bob] login to chat.".into())]
    );
    let msg = Entry::Msg {
        owner: "h2/w/4".into(),
        name: "bob".into(),
        target: "h1/t/1".into(),
        target_name: "ann".into(),
        time: "10:00:00".into(),
        text: "psst".into(),
    };
    assert_eq!(
        shown(&entry(&mut m, "7-0", msg)),
        [(1, "[10:00:00][bob][->][ann]: psst".into())]
    );
    assert_eq!(m.census().get("h2"), Some(&1));
    let out = entry(
        &mut m,
        "8-0",
        Entry::Out {
            owner: "h2/w/4".into(),
            name: "bob".into(),
            why: Leave::Reaped,
        },
    );
    assert_eq!(shown(&out), [(1, "[SYSTEM INFO] - [bob] logout from chat.".into())]);
    assert_eq!(m.chat.names().collect::<Vec<_>>(), ["ann"]);
    // An entry read twice (after a reconnection) is applied once.
    assert!(entry(&mut m, "7-0", ann_in(10)).is_empty());
}

#[test]
fn a_reset_heals_first_then_sends_again_what_it_refused_in_order() {
    let mut m = ready();
    ann_logged_in(&mut m);
    assert_eq!(m.take_done(), [(T, 1)]);
    // Redis came back empty: a line is refused, another is made meanwhile.
    line(&mut m, 1, 2, "msgall one");
    let one = m.take_requests().pop().unwrap();
    answer(&mut m, &one, Some(Reply::Reset));
    let join = m.take_requests().pop().unwrap();
    assert_eq!(join.script, Script::Join);
    line(&mut m, 1, 3, "msgall two");
    assert!(m.take_requests().is_empty(), "nothing goes before the join's answer");
    assert_eq!(m.take_done(), [], "neither frame is done");
    answer(&mut m, &join, ok(&["e2", ""]));
    let sent = m.take_requests();
    let scripts: Vec<Script> = sent.iter().map(|r| r.script).collect();
    assert_eq!(scripts, [Script::Reclaim, Script::Say, Script::Say]);
    assert_eq!(
        &sent[0].args[3..9],
        ["h1/t/1", "10", "ann", "1", "reset", "ann"],
        "quietly, its old order"
    );
    assert_eq!(sent[1].id, one.id, "the refused one again, under its id");
    assert!(sent.iter().all(|r| r.args[0] == "e2"), "with the new epoch");
    assert_eq!(m.reading().from, Id::default(), "the new stream from its start");
    assert!(sent[1].args.contains(&"one".to_string()) && sent[2].args.contains(&"two".to_string()));
}

#[test]
fn a_node_reaped_while_cut_off_keeps_its_users_and_claims_their_names_again() {
    let mut m = ready();
    ann_logged_in(&mut m);
    let reaped = Entry::Out {
        owner: "h1/t/1".into(),
        name: "ann".into(),
        why: Leave::Reaped,
    };
    assert!(shown(&entry(&mut m, "6-0", reaped)).is_empty(), "ann never left, here");
    let reclaim = m.take_requests().pop().unwrap();
    assert_eq!(reclaim.script, Script::Reclaim);
    assert_eq!(reclaim.args[7], "fenced");
    // Taken meanwhile: told, and closed.
    let out = answer(&mut m, &reclaim, Some(Reply::Refused(Refusal::Taken)));
    assert_eq!(shown(&out)[0], (1, "[ERROR] - Username already taken!".into()));
    let closed = out
        .iter()
        .flat_map(|(_, o)| o)
        .any(|o| matches!(o, Output::Close(k) if k.session == 1));
    assert!(closed);
}

#[test]
fn after_a_reset_users_nobody_asserts_again_are_logged_out_here() {
    let mut m = ready();
    entry(
        &mut m,
        "5-0",
        Entry::In {
            owner: "h2/w/4".into(),
            name: "bob".into(),
            seq: 11,
            silent: false,
        },
    );
    line(&mut m, 1, 1, "msgall x");
    let say = m.take_requests().pop().unwrap();
    answer(&mut m, &say, Some(Reply::Reset));
    let join = m.take_requests().pop().unwrap();
    let at = Instant::now();
    m.answered(join.id, ok(&["e2", ""]), at, &mut Emitted::new());
    m.tick(at + Duration::from_secs(1), &mut Emitted::new());
    assert_eq!(m.chat.names().collect::<Vec<_>>(), ["bob"], "still waiting for h2");
    m.tick(at + CONFIRM, &mut Emitted::new());
    assert_eq!(m.chat.names().count(), 0);
}

#[test]
fn a_session_that_ends_is_logged_out_after_its_lines_and_then_forgotten() {
    let mut m = ready();
    line(&mut m, 1, 1, "login ann");
    let login = m.take_requests().pop().unwrap();
    let mut out = Emitted::new();
    m.arrived(T, 2);
    m.closed(
        SessionKey {
            frontend: T,
            session: 1,
        },
        (T, 2),
        &mut out,
    );
    let leave = m.take_requests().pop().unwrap();
    assert_eq!(leave.script, Script::Leave);
    assert_eq!(&leave.args[5..], ["g", "h1/t/1"]);
    answer(&mut m, &login, ok(&["5-0"]));
    answer(&mut m, &leave, ok(&["6-0"]));
    entry(&mut m, "5-0", ann_in(10));
    entry(
        &mut m,
        "6-0",
        Entry::Out {
            owner: "h1/t/1".into(),
            name: "ann".into(),
            why: Leave::Gone,
        },
    );
    assert!(!m.chat.has_session(SessionKey {
        frontend: T,
        session: 1
    }));
    assert_eq!(m.take_done(), [(T, 2)]);
}

#[test]
fn past_the_bound_of_pending_scripts_a_line_is_told_server_busy() {
    let mut m = ready();
    m.requests.max_pending = 10;
    for frame in 1..=10 {
        line(&mut m, 2, frame, "msgall x");
    }
    assert_eq!(m.pending(), 10);
    let out = line(&mut m, 1, 11, "msgall y");
    assert_eq!(shown(&out), [(1, "[ERROR] - server busy, try again".into())]);
}

#[test]
fn an_entry_of_another_epoch_stops_the_reading_until_the_node_joined_again() {
    let mut m = ready();
    let mut out = Emitted::new();
    let generation = m.reading().generation;
    let bob = Entry::In {
        owner: "h2/w/4".into(),
        name: "bob".into(),
        seq: 11,
        silent: false,
    };
    m.entries(generation, vec![(id("9-0"), "e2".into(), Some(bob))], &mut out);
    assert_eq!(m.chat.names().count(), 0, "not applied");
    let join = m.take_requests().pop().unwrap();
    assert_eq!(join.script, Script::Join);
    assert!(
        m.reading().generation > generation,
        "what was read meanwhile is read again"
    );
}

#[test]
fn a_name_held_by_another_live_instance_is_asked_for_again_later_not_at_once() {
    let mut m = Member::new("h1", "i1");
    let join = m.take_requests().pop().unwrap();
    let at = Instant::now();
    m.answered(join.id, Some(Reply::Busy(700)), at, &mut Emitted::new());
    assert!(m.take_requests().is_empty());
    m.tick(at + Duration::from_millis(500), &mut Emitted::new());
    assert!(m.take_requests().is_empty());
    m.tick(at + Duration::from_millis(700), &mut Emitted::new());
    assert_eq!(m.take_requests().pop().map(|r| r.script), Some(Script::Join));
}

#[test]
fn a_restarted_kernel_trusts_redis_unless_the_node_was_reaped_meanwhile() {
    for (kept, script) in [("kept", None), ("new", Some(Script::Reclaim))] {
        let mut m = Member::new("h1", "i1");
        let join = m.take_requests().pop().unwrap();
        let mut out = Emitted::new();
        m.answered(join.id, ok(&["e1", "", kept]), Instant::now(), &mut out);
        let users = m.take_requests().pop().unwrap();
        m.answered(users.id, ok(&["0-0"]), Instant::now(), &mut out);
        // The frontend says ann is logged in; Redis does not have her.
        let login = Login {
            name: "ann".into(),
            seq: 10,
        };
        m.attach(T, "t", vec![(1, Some(login))], &mut out);
        assert_eq!(m.take_requests().pop().map(|r| r.script), script, "{kept}");
        let corrected = out
            .iter()
            .flat_map(|(_, o)| o)
            .any(|o| matches!(o, Output::Named { login: None, .. }));
        assert_eq!(corrected, kept == "kept", "{kept}");
    }
}

#[test]
fn a_frontend_of_thousands_that_leaves_is_logged_out_in_batches() {
    let mut m = ready();
    let mut out = Emitted::new();
    let sessions: Vec<(SessionId, Option<Login>)> = (1..=1200).map(|s| (s, None)).collect();
    m.attach(T, "t", sessions, &mut out);
    for session in 1..=1200u64 {
        let entry = Entry::In {
            owner: format!("h1/t/{session}"),
            name: format!("u{session}"),
            seq: session,
            silent: true,
        };
        let generation = m.reading().generation;
        m.entries(
            generation,
            vec![(id(&format!("{session}-0")), "e1".into(), Some(entry))],
            &mut out,
        );
    }
    m.take_requests();
    m.frontend_gone(T);
    let leaves = m.take_requests();
    assert_eq!(leaves.len(), 3);
    assert!(
        leaves
            .iter()
            .all(|r| r.script == Script::Leave && r.args.len() <= 6 + 500)
    );
}

#[test]
fn users_of_a_frontend_that_never_comes_back_are_logged_out() {
    let mut m = Member::new("h1", "i1");
    let join = m.take_requests().pop().unwrap();
    let at = Instant::now();
    m.answered(join.id, ok(&["e1", "", "kept"]), at, &mut Emitted::new());
    let users = m.take_requests().pop().unwrap();
    m.answered(
        users.id,
        ok(&["0-0", "h1/gone/3", "10\tann\tann"]),
        at,
        &mut Emitted::new(),
    );
    m.tick(at + Duration::from_secs(1), &mut Emitted::new());
    assert!(m.take_requests().iter().all(|r| r.script != Script::Leave));
    m.tick(at + UNCLAIMED, &mut Emitted::new());
    let leave = m
        .take_requests()
        .into_iter()
        .find(|r| r.script == Script::Leave)
        .unwrap();
    assert_eq!(&leave.args[5..], ["g", "h1/gone/3"]);
}

#[test]
fn each_refusal_is_told_as_the_embedded_kernel_would_and_an_unknown_one_as_server_busy() {
    let table = [
        (Refusal::Already, ChatError::AlreadyLogin),
        (Refusal::Invalid, ChatError::InvalidUsername),
        (Refusal::Taken, ChatError::UsernameTaken),
        (Refusal::First, ChatError::FirstLogin),
        (Refusal::NotFound, ChatError::NotFound("bob".into())),
        (Refusal::Unknown("banned".into()), ChatError::ServerBusy),
    ];
    for (refusal, error) in table {
        let told = super::order::shown(Some(Reply::Refused(refusal.clone())), Some("bob".into()));
        assert_eq!(told, (Some(Event::Error(error)), None), "{refusal:?}");
    }
    assert_eq!(super::order::shown(ok(&["5-0"]), None), (None, Some(id("5-0"))));
    assert_eq!(super::order::shown(Some(Reply::Dup), None), (None, None));
    let busy = (Some(Event::Error(ChatError::ServerBusy)), None);
    assert_eq!(super::order::shown(None, None), busy, "an error");
    assert_eq!(
        super::order::shown(Some(Reply::Busy(5)), None),
        busy,
        "an answer that makes no sense here"
    );

    let mut m = ready();
    line(&mut m, 2, 1, "msgall hi");
    let say = m.take_requests().pop().unwrap();
    let out = answer(&mut m, &say, Some(Reply::Refused(Refusal::Unknown("banned".into()))));
    assert_eq!(shown(&out), [(2, "[ERROR] - server busy, try again".into())]);
    assert_eq!(m.take_done(), [(T, 1)]);
}

#[test]
fn a_line_asks_redis_for_its_script_or_is_answered_here() {
    let frame = Frame {
        owner: "h1/t/1",
        process: 99,
        seq: 7,
    };
    let table = [
        ("login ann", Some((Script::Login, None))),
        ("logout", Some((Script::Leave, None))),
        ("msg bob hi", Some((Script::Say, Some("bob")))),
        ("msgall hi", Some((Script::Say, None))),
        ("whoami", None),
        ("userlist", None),
        ("help", None),
        ("login", None),
        ("", None),
    ];
    for (text, want) in table {
        let got = asked(text, frame, "10:00:00").map(|(call, typed)| (call.script, typed));
        let want = want.map(|(script, typed)| (script, typed.map(str::to_string)));
        assert_eq!(got, want, "{text:?}");
    }
}
