//! The member's standing: phases, asking again, who is waited for.

use super::*;

#[test]
fn a_refusal_heals_only_a_member_that_was_ready() {
    let mut healing = Healing::new();
    assert!(!healing.refused(), "a start goes on joining");
    assert_eq!(healing.phase(), Phase::Starting);
    healing.joined(true);
    assert!(
        healing.kept() && healing.phase() == Phase::Starting,
        "ready once everyone is read"
    );
    healing.started(Instant::now());
    assert_eq!(healing.phase(), Phase::Ready);
    assert!(!healing.holds());
    assert!(healing.refused());
    assert!(healing.holds(), "only a join goes while healing");
    assert!(!healing.refused(), "one heal at a time");
    healing.joined(false);
    assert_eq!(healing.phase(), Phase::Ready);
    assert!(healing.kept(), "what the start's join said stands");
}

#[test]
fn asking_again_waits_longer_each_time_or_as_long_as_a_presence_lapses() {
    let at = Instant::now();
    let ms = Duration::from_millis;
    // (a lapse named by the answer, the wait)
    let table = [
        (None, ms(100)),
        (None, ms(200)),
        (Some(ms(700)), ms(700)),
        (None, ms(800)),
        (None, ms(1000)),
        (None, ms(1000)),
        (Some(ms(5)), ms(100)),
        (Some(ms(4000)), ms(1000)),
    ];
    let mut healing = Healing::new();
    for (i, (lapse, wait)) in table.into_iter().enumerate() {
        healing.ask_again(Script::Users, at, lapse);
        assert_eq!(healing.due(at + wait - ms(1)), None, "{i}: not yet");
        assert_eq!(healing.due(at + wait), Some(Script::Users), "{i}");
        assert_eq!(healing.due(at + wait), None, "{i}: once");
    }
    healing.joined(false);
    healing.ask_again(Script::Join, at, None);
    assert_eq!(
        healing.due(at + ms(100)),
        Some(Script::Join),
        "a join answered starts over"
    );
}

#[test]
fn users_are_waited_for_a_while_and_unclaimed_ones_swept_once() {
    let at = Instant::now();
    let key = |session| SessionKey { frontend: 9, session };
    let mut healing = Healing::new();
    healing.reset(vec![key(1), key(2)], at);
    healing.confirmed(key(1));
    assert_eq!(healing.unconfirmed_by(at + CONFIRM / 2), []);
    assert_eq!(healing.unconfirmed_by(at + CONFIRM), [key(2)]);
    assert_eq!(healing.unconfirmed_by(at + CONFIRM * 2), [], "once");

    assert!(!healing.unclaimed_due(at + UNCLAIMED), "not started");
    healing.started(at);
    assert!(!healing.unclaimed_due(at + UNCLAIMED / 2));
    assert!(healing.unclaimed_due(at + UNCLAIMED));
    assert!(!healing.unclaimed_due(at + UNCLAIMED * 2), "once");
}
