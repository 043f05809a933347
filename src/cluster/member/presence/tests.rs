//! Presence: who may be reaped, and who is counted.

use super::*;
use crate::chat::Output;

fn ok(fields: &[&str]) -> Option<Reply> {
    Some(Reply::Ok(fields.iter().map(|f| f.to_string()).collect()))
}

#[test]
fn nobody_is_reaped_until_joined_for_a_presences_life() {
    let at = Instant::now();
    let mut presence = Presence::default();
    assert!(!presence.may_reap(at), "not joined");
    presence.joined(at);
    assert!(!presence.may_reap(at + PRESENCE_TTL / 2));
    assert!(presence.may_reap(at + PRESENCE_TTL));
    presence.joined(at + PRESENCE_TTL);
    assert!(
        !presence.may_reap(at + PRESENCE_TTL),
        "joined again: the wait starts over"
    );
}

#[test]
fn the_census_counts_every_member_node_and_each_ones_users() {
    let mut presence = Presence::default();
    let mut owners = Owners::new("h1");
    let mut chat = Chat::new();
    let mut out: Vec<Output> = Vec::new();
    presence.beaten(ok(&["1", "h9", "h1", "h2", "h3"]));
    for (owner, name) in [("h2/w/1", "ann"), ("h2/w/2", "bob"), ("h1/t/1", "cy")] {
        let key = owners.key(owner).unwrap();
        chat.joined(key, name, 1, false, &mut out);
    }
    let census: Vec<(String, u64)> = presence.census("h1", &chat, &owners).into_iter().collect();
    assert_eq!(census, [("h1".into(), 1), ("h2".into(), 2), ("h3".into(), 0)]);
    presence.beaten(Some(Reply::Fenced));
    presence.beaten(ok(&[]));
    assert_eq!(
        presence.census("h1", &chat, &owners).len(),
        3,
        "an answer that says nothing changes nothing"
    );
}
