//! What one process records in the position file, the next one reads.

use super::*;

fn login(name: &str, seq: u64) -> Login {
    Login {
        name: name.to_string(),
        seq,
    }
}

#[test]
fn what_one_process_records_the_next_one_reads() {
    let fd = PositionFile::create("test", 100).unwrap();
    let first = PositionFile::map(&fd).unwrap();
    assert_eq!(first.slots(), 100);
    assert_eq!(first.position(), None);
    first.set_position(7, 42);
    let slot = Slot::new(&first, 99).unwrap();
    slot.output(41, true);
    slot.writing(43, 1000);
    slot.reading(Some(0));
    slot.input(true, false);
    slot.unacked(true);
    slot.line(40);
    slot.login(Some(&login("alice", 3)));
    Slot::new(&first, 3).unwrap().input(false, true);
    drop((first, slot));
    let next = PositionFile::map(&fd).unwrap();
    assert_eq!(next.position(), Some((7, 42)));
    let left = Left {
        written: 41,
        pending: true,
        writing: 43,
        write_end: 1000,
        reading: Some(0),
        held: true,
        partial: false,
        unacked: true,
        line: 40,
        login: Some(login("alice", 3)),
    };
    assert_eq!(Slot::new(&next, 99).unwrap().left(), left);
    let partial = Left {
        partial: true,
        ..Left::default()
    };
    assert_eq!(Slot::new(&next, 3).unwrap().left(), partial);
    assert_eq!(Slot::new(&next, 4).unwrap().left(), Left::default());
}

#[test]
fn a_login_is_recorded_whole_and_forgotten_on_logout_or_reset() {
    let fd = PositionFile::create("test", 3).unwrap();
    let file = PositionFile::map(&fd).unwrap();
    let slot = Slot::new(&file, 1).unwrap();
    assert_eq!(slot.left().login, None);
    for name in ["a", "alice", "𝒜".repeat(32).as_str(), "ünïcödé-name.x_y"] {
        slot.login(Some(&login(name, 42)));
        let next = Slot::new(&PositionFile::map(&fd).unwrap(), 1).unwrap();
        assert_eq!(next.left().login, Some(login(name, 42)), "{name}");
    }
    assert_eq!(
        Slot::new(&file, 0).unwrap().left().login,
        None,
        "its neighbours keep theirs"
    );
    slot.login(None);
    assert_eq!(slot.left().login, None);
    slot.login(Some(&login("bob", 1)));
    slot.unacked(true);
    slot.reset(9, None);
    assert_eq!(
        slot.left(),
        Left {
            written: 9,
            ..Left::default()
        }
    );
}

#[test]
fn a_slot_past_the_end_is_none() {
    let fd = PositionFile::create("test", 2).unwrap();
    let file = PositionFile::map(&fd).unwrap();
    assert!(Slot::new(&file, 1).is_some());
    assert!(Slot::new(&file, 2).is_none());
}
