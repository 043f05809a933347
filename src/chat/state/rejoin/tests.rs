//! A frontend's sessions logged out, carried on or restored after it goes or the kernel restarts.

use super::super::tests::{Harness, NOW, key};
use super::*;

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
