//! Requests go out in order, once, and wait while the member heals.

use std::time::Duration;

use super::*;

fn made(call: Call, purpose: Purpose) -> Made {
    Made { call, purpose }
}

fn beat() -> Made {
    made(Call::beat(Duration::from_secs(5), None, false), Purpose::Beat)
}

#[test]
fn each_request_goes_out_in_order_headed_by_the_epoch_it_is_sent_with() {
    let mut requests = Requests::new("h1", "i1", 10);
    let join = requests.make(
        made(Call::join("e0", "h1", "i1", Duration::from_secs(5)), Purpose::Join),
        false,
    );
    requests.set_epoch("e1".into());
    let users = requests.make(made(Call::users(), Purpose::Users), false);
    assert!(join < users);
    let sent = requests.take();
    assert_eq!(sent.iter().map(|r| r.id).collect::<Vec<_>>(), [join, users]);
    assert_eq!(sent[0].args, ["e0", "h1", "i1", "5000"], "a join brings its own head");
    assert_eq!(sent[1].args, ["e1", "h1", "i1"]);
    assert!(requests.take().is_empty(), "taken once");
    assert_eq!(requests.pending(), 2);
    assert!(requests.answered(users).is_some());
    assert!(requests.answered(users).is_none(), "answered once");
    assert_eq!(requests.pending(), 1);
}

#[test]
fn while_healing_only_a_join_goes_and_the_rest_go_again_in_order_under_their_ids() {
    let mut requests = Requests::new("h1", "i1", 10);
    requests.set_epoch("e1".into());
    let refused = requests.make(made(Call::users(), Purpose::Users), false);
    requests.take();
    // Refused for a reset: it ran nowhere.
    let back = requests.answered(refused).unwrap();
    requests.hold(refused, back);
    let meanwhile = requests.make(beat(), true);
    let join = requests.make(
        made(Call::join("e2", "h1", "i1", Duration::from_secs(5)), Purpose::Join),
        true,
    );
    assert_eq!(requests.take().iter().map(|r| r.id).collect::<Vec<_>>(), [join]);
    assert_eq!(requests.pending(), 3, "the join and the two held");
    assert!(requests.beating(), "a heartbeat held counts");
    requests.set_epoch("e2".into());
    requests.send_held();
    let sent = requests.take();
    assert_eq!(sent.iter().map(|r| r.id).collect::<Vec<_>>(), [refused, meanwhile]);
    assert!(sent.iter().all(|r| r.args[0] == "e2"), "with the new epoch");
}

#[test]
fn the_bound_counts_what_is_on_its_way_and_what_is_held() {
    let mut requests = Requests::new("h1", "i1", 2);
    requests.make(beat(), false);
    assert!(!requests.full());
    requests.make(made(Call::part(), Purpose::Part), true);
    assert!(requests.full());
    assert!(!requests.parting(), "a leave held is not on its way");
    requests.send_held();
    assert!(requests.parting());
}
