//! A session's frames finish in order, and what is shown waits for the replica.

use super::super::requests::Purpose;
use super::*;
use crate::cluster::scripts::Call;

const T: FrontendId = 1;
const KEY: SessionKey = SessionKey {
    frontend: T,
    session: 1,
};

fn id(s: &str) -> Id {
    s.parse().unwrap()
}

fn busy() -> Event {
    Event::Error(crate::chat::ChatError::ServerBusy)
}

fn deferred() -> Made {
    Made {
        call: Call::users(),
        purpose: Purpose::Users,
    }
}

/// A session whose front frame (frame 1) is `front`, after entry `after` ("": none), `flags`
/// saying whether it is closing and whether it ended.
fn state(front: fn() -> Option<Work>, after: &str, flags: &str) -> Sessions {
    let mut sessions = Sessions::default();
    let mut queue = Queue {
        after: Some(after).filter(|a| !a.is_empty()).map(id),
        closing: flags.contains("closing"),
        ..Queue::default()
    };
    queue.items.extend(front().map(|work| Item { frame: (T, 1), work }));
    sessions.queues.insert(KEY, queue);
    if flags.contains("ended") {
        sessions.end(KEY);
    }
    sessions
}

fn sent() -> Option<Work> {
    Some(Work::Sent(1))
}
fn held() -> Option<Work> {
    Some(Work::Deferred(deferred()))
}
fn quiet() -> Option<Work> {
    Some(Work::Answered(None))
}
fn refused() -> Option<Work> {
    Some(Work::Answered(Some(busy())))
}
fn local() -> Option<Work> {
    Some(Work::Local("whoami".into()))
}
fn empty() -> Option<Work> {
    None
}

fn finished(show: Option<Show>) -> Next {
    Next::Finished { frame: (T, 1), show }
}

#[test]
fn the_front_frame_finishes_once_its_script_answered_and_what_it_shows_once_the_replica_caught_up() {
    let whoami = || Some(Show::Local("whoami".into()));
    #[rustfmt::skip]
    let table = [
        // (case, front, after, flags, applied, next)
        ("a script on its way holds the queue", sent as fn() -> _, "", "", "0-0", Next::Wait),
        ("so does one held behind an answer", held, "", "", "0-0", Next::Wait),
        ("nothing to show waits for nothing", quiet, "5-0", "", "4-0", finished(None)),
        ("a refusal waits for the session's entry", refused, "5-0", "", "4-0", Next::Wait),
        ("and shows once it is applied", refused, "5-0", "", "5-0", finished(Some(Show::Answer(busy())))),
        ("an answer made here, no entry before", local, "", "", "0-0", finished(whoami())),
        ("an answer made here waits for the entry", local, "5-0", "", "4-0", Next::Wait),
        ("after a logout nothing shows", local, "5-0", "closing", "6-0", finished(None)),
        ("an empty queue", empty, "", "", "0-0", Next::Empty { ended: false }),
        ("ended, its logout not read yet", empty, "5-0", "ended", "4-0", Next::Empty { ended: false }),
        ("ended, its logout read", empty, "5-0", "ended", "5-0", Next::Empty { ended: true }),
        ("ended, never logged in", empty, "", "ended", "0-0", Next::Empty { ended: true }),
    ];
    for (case, front, after, flags, applied, next) in table {
        assert_eq!(state(front, after, flags).next(KEY, id(applied)), next, "{case}");
    }
    assert_eq!(Sessions::default().next(KEY, id("0-0")), Next::Wait, "no queue");
}

#[test]
fn a_session_waiting_for_the_replica_is_reached_by_its_entry() {
    let mut sessions = Sessions::default();
    sessions.push(KEY, (T, 1), Work::Sent(1));
    sessions.push(KEY, (T, 2), Work::Local("whoami".into()));
    assert_eq!(sessions.next(KEY, id("0-0")), Next::Wait);
    sessions.answered(KEY, 1, None, Some(id("5-0")));
    assert_eq!(
        sessions.next(KEY, id("4-0")),
        Next::Finished {
            frame: (T, 1),
            show: None
        }
    );
    assert_eq!(sessions.next(KEY, id("4-0")), Next::Wait);
    assert_eq!(sessions.reached(id("4-0")), None);
    assert_eq!(sessions.reached(id("6-0")), Some(HashSet::from([KEY])));
    assert_eq!(sessions.reached(id("6-0")), None, "reached once");
    assert_eq!(
        sessions.next(KEY, id("6-0")),
        Next::Finished {
            frame: (T, 2),
            show: Some(Show::Local("whoami".into()))
        }
    );
}

#[test]
fn a_script_behind_an_answer_made_here_goes_once_that_answer_is_out() {
    let mut sessions = Sessions::default();
    sessions.push(KEY, (T, 1), Work::Local("whoami".into()));
    assert!(sessions.behind_local(KEY));
    sessions.push(KEY, (T, 2), Work::Deferred(deferred()));
    let mut sent = Vec::new();
    sessions.send_deferred(KEY, |_| {
        sent.push(7);
        7
    });
    assert!(sent.is_empty(), "held");
    assert!(matches!(
        sessions.next(KEY, id("0-0")),
        Next::Finished { frame: (T, 1), .. }
    ));
    assert!(!sessions.behind_local(KEY));
    sessions.send_deferred(KEY, |_| 7);
    assert_eq!(sessions.next(KEY, id("0-0")), Next::Wait, "on its way");
    sessions.answered(KEY, 7, None, None);
    assert_eq!(
        sessions.next(KEY, id("0-0")),
        Next::Finished {
            frame: (T, 2),
            show: None
        }
    );
}

#[test]
fn a_logout_closes_the_session_and_its_sessions_follow_their_frontend() {
    let mut sessions = Sessions::default();
    sessions.logged_out(KEY);
    assert!(!sessions.closing(KEY), "no queue, nothing to close");
    sessions.push(KEY, (T, 1), Work::Sent(1));
    sessions.logged_out(KEY);
    assert!(sessions.closing(KEY));
    sessions.close(KEY, (T, 2), 2);
    assert!(sessions.ended(KEY) && sessions.queued(KEY));
    sessions.move_frontend(T, 9);
    let moved = SessionKey {
        frontend: 9,
        session: 1,
    };
    assert!(!sessions.queued(KEY) && !sessions.ended(KEY));
    assert!(sessions.queued(moved) && sessions.ended(moved) && sessions.closing(moved));
    sessions.forget(moved);
    assert!(!sessions.queued(moved) && !sessions.ended(moved));
}
