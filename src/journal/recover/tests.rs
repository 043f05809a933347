//! Every decision of an adoption, as tables.

use super::*;

const NOTHING: Counts = Counts {
    written: None,
    read: None,
};

fn counts(written: u64, read: u64) -> Counts {
    Counts {
        written: Some(written),
        read: Some(read),
    }
}

/// What became of a client's input, by what its slot says and its socket counts.
#[test]
fn input_table() {
    let idle = Left::default();
    let held = Left {
        held: true,
        ..idle.clone()
    };
    let partial = Left {
        partial: true,
        ..idle.clone()
    };
    let unacked = Left {
        unacked: true,
        line: 17,
        ..idle.clone()
    };
    let unacked_unsent = Left {
        line: 0,
        ..unacked.clone()
    };
    let reading = |before| Left {
        reading: Some(before),
        ..idle.clone()
    };
    let unacked_reading = Left {
        reading: Some(100),
        ..unacked.clone()
    };
    let held_and_unacked = Left {
        held: true,
        ..unacked.clone()
    };
    #[rustfmt::skip]
    let table: [(&str, &Left, Counts, Input); 11] = [
        ("nothing in hand",                     &idle, counts(0, 0), Input::Intact),
        ("lines read, not passed on",           &held, counts(0, 0), Input::Lost { partial: false }),
        ("half a line read",                    &partial, counts(0, 0), Input::Lost { partial: true }),
        ("lines sent, not acknowledged",        &unacked, counts(0, 0), Input::Unsure { line: 17 }),
        ("a line not numbered yet",             &unacked_unsent, counts(0, 0), Input::Unsure { line: 0 }),
        ("a read under way that read nothing",  &reading(100), counts(0, 100), Input::Intact),
        ("a read under way that read",          &reading(100), counts(0, 101), Input::Lost { partial: true }),
        ("a read under way, socket mute",       &reading(100), NOTHING, Input::Lost { partial: true }),
        ("unacknowledged, and a read that read", &unacked_reading, counts(0, 150), Input::Lost { partial: true }),
        ("unacknowledged, and a read that did not", &unacked_reading, counts(0, 100), Input::Unsure { line: 17 }),
        // Told of the loss once, as lost: not also unsure.
        ("lines held and lines unacknowledged", &held_and_unacked, counts(0, 0), Input::Lost { partial: false }),
    ];
    for (case, left, counts, input) in table {
        assert_eq!(recover(left, counts, Some(5)).input, input, "{case}");
    }
}

/// The last frame that reached a client: frames sent again up to it are skipped.
#[test]
fn reached_table() {
    let written = |written, pending, writing, write_end| Left {
        written,
        pending,
        writing,
        write_end,
        ..Left::default()
    };
    /// (case, slot, socket, position, reached)
    type Row = (&'static str, Left, Counts, Option<u64>, Option<u64>);
    #[rustfmt::skip]
    let table: [Row; 8] = [
        ("all written: the position",           written(3, false, 0, 0), counts(500, 0), Some(9), Some(9)),
        ("all written, no position",            written(3, false, 0, 0), counts(500, 0), None, None),
        ("output pending: what was written",    written(3, true, 0, 0), counts(500, 0), Some(9), Some(3)),
        ("a write that went through",           written(3, true, 5, 500), counts(500, 0), Some(9), Some(5)),
        ("a write past what the socket took",   written(3, true, 5, 501), counts(500, 0), Some(9), Some(3)),
        ("a write, socket mute",                written(3, true, 5, 500), NOTHING, Some(9), Some(3)),
        ("a write of replies only",             written(3, true, 3, 500), counts(500, 0), Some(9), Some(3)),
        ("pending, even without a position",    written(3, true, 0, 0), counts(0, 0), None, Some(3)),
    ];
    for (case, left, counts, position, reached) in table {
        assert_eq!(recover(&left, counts, position).reached, reached, "{case}");
    }
}

#[test]
fn the_login_is_named_again() {
    let login = Login {
        name: "Юля".into(),
        seq: 4,
    };
    let left = Left {
        login: Some(login.clone()),
        ..Left::default()
    };
    assert_eq!(recover(&left, NOTHING, None).login, Some(login));
}

/// What an adopted client's connection does first.
#[test]
fn start_table() {
    let unsure = Input::Unsure { line: 3 };
    let whole = Input::Lost { partial: false };
    let half = Input::Lost { partial: true };
    #[rustfmt::skip]
    let table = [
        (Input::Intact, false, Start::GoOn),
        (Input::Intact, true, Start::GoOn),
        (unsure, false, Start::GoOn),
        (unsure, true, Start::GoOn),
        (whole, false, Start::TellLost),
        (whole, true, Start::GoOn),
        (half, false, Start::MidLine),
        (half, true, Start::GoOn),
    ];
    for (input, taken_over, expected) in table {
        assert_eq!(
            start(input, taken_over),
            expected,
            "{input:?}, taken over: {taken_over}"
        );
    }
}

#[test]
fn lines_after_what_the_kernel_applied_are_lost() {
    let unsure = HashMap::from([(1, 0), (2, 10), (3, 11), (4, 12)]);
    assert_eq!(
        lost_after(&unsure, 11),
        vec![1, 4],
        "never numbered, or numbered past it"
    );
    assert_eq!(lost_after(&unsure, 0), vec![1, 2, 3, 4]);
    assert_eq!(lost_after(&HashMap::new(), 5), Vec::<SessionId>::new());
}

#[test]
fn the_kernel_resumes_after_what_reached_every_client() {
    assert_eq!(resume_from(None, [Some(3)]), None, "no position: nothing to resume");
    assert_eq!(resume_from(Some((7, 10)), []), Some((7, 10)));
    assert_eq!(
        resume_from(Some((7, 10)), [None, Some(12), Some(8), Some(9)]),
        Some((7, 8))
    );
}
