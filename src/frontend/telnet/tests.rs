//! Unit tests of the telnet decoder: line endings, negotiation, the line bound, saved states.

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
    assert!(Decoder::restore(10, &saved[..3]).is_none());
    assert!(Decoder::restore(10, &[2, b'x', 0, 0]).is_none(), "no such command");
    assert!(Decoder::restore(10, &[0, 0, 2, 0]).is_none());
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
