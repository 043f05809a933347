//! Unit tests of the telnet decoder: line endings, negotiation, the line bound, saved states.

use proptest::prelude::*;

use super::*;

fn run(max_line: usize, chunks: &[&[u8]]) -> Vec<Item> {
    let mut decoder = Decoder::new(max_line);
    let mut items = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut |i| items.push(i));
    }
    items
}

fn line(s: &str) -> Item {
    Item::Line(s.to_string())
}

#[test]
fn lines_end_with_lf_or_crlf() {
    assert_eq!(run(100, &[b"a\r\nb\nc"]), [line("a"), line("b")]);
    assert_eq!(run(100, &[b"a\r", b"\n"]), [line("a")]);
    assert_eq!(run(100, &[b"a\rb\n"]), [line("a\rb")]);
    assert_eq!(run(100, &[b"\r\n\n"]), [line(""), line("")]);
}

#[test]
fn cr_nul_ends_a_line_too() {
    assert_eq!(
        run(100, &[b"login a\r\0\r\nwhoami\r\0"]),
        [line("login a"), line(""), line("whoami")]
    );
    assert_eq!(run(100, &[b"a\0b\n"]), [line("a\0b")]);
}

#[test]
fn split_anywhere() {
    let whole = b"msgall hi\r\n\xff\xfd\x01login a\xff\xfa\x18\x01\xff\xf0\n";
    let expected = run(100, &[whole]);
    for at in 0..whole.len() {
        assert_eq!(run(100, &[&whole[..at], &whole[at..]]), expected, "split at {at}");
    }
}

#[test]
fn a_restored_decoder_goes_on_where_the_saved_one_stopped() {
    let whole = b"msgall hi\r\n\xff\xfd\x01login a\xff\xfa\x18\x01\xff\xf0\r\0abcdefgh\nok\r\n";
    let expected = run(6, &[whole]);
    assert!(expected.contains(&Item::TooLong));
    for at in 0..whole.len() {
        let mut first = Decoder::new(6);
        let mut items = Vec::new();
        first.feed(&whole[..at], &mut |i| items.push(i));
        let mut next = Decoder::restore(6, &first.save()).expect("a state it saved");
        next.feed(&whole[at..], &mut |i| items.push(i));
        assert_eq!(items, expected, "saved at {at}");
    }
}

#[test]
fn a_state_it_cannot_take_is_refused() {
    let mut decoder = Decoder::new(10);
    decoder.feed(b"abcdef", &mut |_| {});
    let saved = decoder.save();
    assert!(Decoder::restore(10, &saved).is_some());
    assert!(
        Decoder::restore(5, &saved).is_none(),
        "its line is over the new max_line"
    );
    for cut in 0..saved.len() {
        assert!(Decoder::restore(10, &saved[..cut]).is_none(), "cut to {cut} bytes");
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert!(Decoder::restore(10, &longer).is_none(), "a byte after the state");
    let mut other = saved.clone();
    other[0] = VERSION + 1;
    assert!(Decoder::restore(10, &other).is_none(), "another version's state");
    // The version, then Phase::Option (variant 2) with its verb, cr, skipping, an empty line.
    assert!(Decoder::restore(10, &[VERSION, 2, DO, 0, 0, 0]).is_some());
    assert!(
        Decoder::restore(10, &[VERSION, 2, b'x', 0, 0, 0]).is_none(),
        "no such command"
    );
    assert!(Decoder::restore(10, &[VERSION, 5, 0, 0, 0]).is_none(), "no such state");
    assert!(Decoder::restore(10, &[VERSION, 0, 2, 0, 0]).is_none(), "cr is a bool");
    assert!(
        Decoder::restore(10, &[VERSION, 0, 0, 0, 3, b'a']).is_none(),
        "a line cut short"
    );
}

#[test]
fn a_saved_state_of_every_phase_comes_back_equal() {
    let whole = b"ab\r\xff\xf1c\xff\xfd\x01\xff\xfb\x1f\xff\xfc\x01\xff\xfe\x03\xff\xfa\x18\xff\xff\xff\xf0d\r\0abcdefgh\nok\r\n";
    let mut decoder = Decoder::new(6);
    let mut seen = Vec::new();
    for &byte in whole {
        decoder.feed(&[byte], &mut |_| {});
        let restored = Decoder::restore(6, &decoder.save());
        assert_eq!(restored.as_ref(), Some(&decoder), "after {byte:#04x}");
        let phase = (decoder.phase, decoder.cr, decoder.skipping, decoder.line.is_empty());
        if !seen.contains(&phase) {
            seen.push(phase);
        }
    }
    for state in [
        Phase::Data,
        Phase::Command,
        Phase::Option(DO),
        Phase::Option(WILL),
        Phase::Option(WONT),
        Phase::Option(DONT),
        Phase::Sub,
        Phase::SubCommand,
    ] {
        assert!(seen.iter().any(|s| s.0 == state), "{state:?} never seen");
    }
    assert!(seen.iter().any(|s| s.1), "a pending \\r never seen");
    assert!(seen.iter().any(|s| s.2), "a skipped line never seen");
    assert!(seen.iter().any(|s| !s.3), "an unfinished line never seen");
}

proptest! {
    #[test]
    fn restoring_any_bytes_never_panics(
        version in prop_oneof![Just(VERSION), any::<u8>()],
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        input in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let saved = [&[version][..], &bytes].concat();
        if let Some(mut decoder) = Decoder::restore(8, &saved) {
            decoder.feed(&input, &mut |_| {});
            prop_assert!(decoder.buffered() <= 8);
        }
    }

    #[test]
    fn a_garbled_state_is_refused_or_fits(
        line in prop::collection::vec(any::<u8>(), 0..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut decoder = Decoder::new(8);
        decoder.feed(b"\xff\xfd", &mut |_| {});
        decoder.line = line;
        let mut saved = decoder.save();
        for (at, byte) in flips {
            let at = at.index(saved.len());
            saved[at] = byte;
        }
        if let Some(restored) = Decoder::restore(8, &saved) {
            prop_assert!(restored.buffered() <= 8);
            prop_assert_eq!(Decoder::restore(8, &restored.save()), Some(restored));
        }
    }
}

#[test]
fn negotiation_is_answered_and_removed() {
    let items = run(100, &[b"\xff\xfd\x01\xff\xfb\x1fhi\xff\xfc\x01\xff\xfe\x03\xff\xf1\n"]);
    assert_eq!(
        items,
        [Item::Answer([IAC, WONT, 1]), Item::Answer([IAC, DONT, 31]), line("hi"),]
    );
}

#[test]
fn subnegotiation_is_removed() {
    assert_eq!(run(100, &[b"a\xff\xfa\x18\x00xterm\xff\xff\xff\xf0b\n"]), [line("ab")]);
}

#[test]
fn iac_iac_is_a_data_byte() {
    assert_eq!(run(100, &[b"a\xff\xffb\n"]), [line("a\u{fffd}b")]);
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(run(100, &[b"h\xc3\xa9 \xc3\n"]), [line("hé \u{fffd}")]);
}

#[test]
fn too_long_is_reported_at_once_and_skipped_to_the_end() {
    let mut decoder = Decoder::new(4);
    let mut items = Vec::new();
    decoder.feed(b"abcd", &mut |i| items.push(i));
    assert!(items.is_empty());
    decoder.feed(b"e", &mut |i| items.push(i));
    assert_eq!(items, [Item::TooLong]);
    decoder.feed(&[b'x'; 10_000], &mut |i| items.push(i));
    assert_eq!(decoder.buffered(), 0);
    decoder.feed(b"zz\nok\n", &mut |i| items.push(i));
    assert_eq!(items, [Item::TooLong, line("ok")]);
}

#[test]
fn max_line_counts_content_not_the_line_ending() {
    assert_eq!(run(4, &[b"abcd\r\n"]), [line("abcd")]);
    assert_eq!(run(4, &[b"abc\r\r\n"]), [line("abc\r")]);
    assert_eq!(run(4, &[b"abcd\rx\n"]), [Item::TooLong]);
}
