//! The member's place in the stream: each entry once, from the current reading.

use super::*;

fn id(s: &str) -> Id {
    s.parse().unwrap()
}

#[test]
fn an_entry_is_new_once_past_the_last_applied() {
    let table = [
        ("0-0", "1-0", true),
        ("0-0", "0-0", true),
        ("5-0", "5-1", true),
        ("5-0", "5-0", false),
        ("5-0", "4-9", false),
    ];
    for (applied, entry, new) in table {
        let mut stream = Stream::default();
        if applied != "0-0" {
            stream.step(id(applied));
        }
        assert_eq!(stream.is_new(id(entry)), new, "{entry} after {applied}");
    }
}

#[test]
fn a_start_reads_from_the_last_entry_or_delivers_from_where_the_previous_kernel_left_off() {
    // (delivered by the previous kernel, last entry when everyone was read, reading from, deliver only up to)
    let table = [
        (None, "9-0", "9-0", None),
        (Some("9-0"), "9-0", "9-0", None),
        (Some("12-0"), "9-0", "9-0", None),
        (Some("7-0"), "9-0", "7-0", Some("9-0")),
    ];
    for (delivered, last, from, until) in table {
        let mut stream = Stream::default();
        stream.joined(delivered.map(id));
        stream.start(id(last));
        let reading = stream.reading();
        assert_eq!((reading.generation, reading.from), (1, id(from)), "{delivered:?}");
        assert_eq!(stream.applied(), id(from));
        assert_eq!(stream.written_so_far(), Some(id(from)));
        let Some(until) = until else { continue };
        assert!(stream.step(id("8-0")), "delivered only");
        assert!(stream.step(id(until)), "up to the last entry read");
        assert!(!stream.step(id("10-0")), "applied after it");
    }
}

#[test]
fn each_new_position_is_a_new_generation() {
    let mut stream = Stream::default();
    assert!(stream.reads(0) && !stream.reads(1));
    assert_eq!(stream.written_so_far(), None, "nothing read yet");
    stream.start(id("5-0"));
    stream.step(id("6-0"));
    stream.written(id("6-0"));
    stream.written(id("5-0"));
    assert_eq!(stream.written_so_far(), Some(id("6-0")), "written only grows");
    stream.read_again();
    assert_eq!(
        stream.reading(),
        Reading {
            generation: 2,
            from: id("6-0")
        }
    );
    assert!(
        stream.reads(2) && !stream.reads(1),
        "what the first position read is dropped"
    );
    stream.restart();
    assert_eq!(
        stream.reading(),
        Reading {
            generation: 3,
            from: Id::default()
        }
    );
    assert_eq!(stream.applied(), Id::default());
    assert_eq!(stream.written_so_far(), None);
    assert!(stream.is_new(id("1-0")), "a new epoch's stream from its start");
}
