//! Unit tests of the WebSocket decoder (whole, split anywhere, saved and restored, refused) and
//! of the server's frames.

use proptest::prelude::*;

use super::saved::VERSION;
use super::*;

/// A masked client frame.
fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

fn decode(decoder: &mut Decoder, mut bytes: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    while let Some(item) = decoder.next(&mut bytes) {
        items.push(item);
    }
    items
}

#[test]
fn text_ping_close() {
    let mut d = Decoder::new(100, 1000);
    let mut bytes = client(true, 1, b"login ann");
    bytes.extend(client(true, 9, b"p1"));
    bytes.extend(client(true, 10, b""));
    bytes.extend(client(true, 8, &1000u16.to_be_bytes()));
    bytes.extend(client(true, 1, b"ignored after close"));
    assert_eq!(
        decode(&mut d, &bytes),
        [
            Item::Text("login ann".into()),
            Item::Ping(Bytes::from_static(b"p1")),
            Item::Pong,
            Item::Close
        ]
    );
}

#[test]
fn split_anywhere_and_fragments_with_a_ping_between() {
    let mut bytes = client(false, 1, "héllo ".as_bytes());
    bytes.extend(client(true, 9, b"x"));
    bytes.extend(client(false, 0, b"wor"));
    bytes.extend(client(true, 0, b"ld"));
    let expected = [Item::Ping(Bytes::from_static(b"x")), Item::Text("héllo world".into())];
    for at in 0..bytes.len() {
        let mut d = Decoder::new(100, 1000);
        let mut items = decode(&mut d, &bytes[..at]);
        items.extend(decode(&mut d, &bytes[at..]));
        assert_eq!(items, expected, "split at {at}");
    }
}

#[test]
fn a_restored_decoder_goes_on_where_the_saved_one_stopped() {
    let mut bytes = client(false, 1, "héllo ".as_bytes());
    bytes.extend(client(true, 9, b"x"));
    bytes.extend(client(false, 0, b"wor"));
    bytes.extend(client(true, 0, b"ld"));
    bytes.extend(client(true, 1, &[b'z'; 300]));
    bytes.extend(client(true, 1, b"ok"));
    let expected = [
        Item::Ping(Bytes::from_static(b"x")),
        Item::Text("héllo world".into()),
        Item::TooLong,
        Item::Text("ok".into()),
    ];
    for at in 0..bytes.len() {
        let mut first = Decoder::new(100, 1000);
        let mut items = decode(&mut first, &bytes[..at]);
        let mut next = Decoder::restore(100, 1000, &first.save()).expect("a state it saved");
        items.extend(decode(&mut next, &bytes[at..]));
        assert_eq!(items, expected, "saved at {at}");
    }
}

#[test]
fn a_state_it_cannot_take_is_refused() {
    let mut d = Decoder::new(100, 1000);
    let bytes = client(true, 1, &[b'a'; 50]);
    decode(&mut d, &bytes[..40]);
    let saved = d.save();
    assert!(Decoder::restore(100, 1000, &saved).is_some());
    assert!(
        Decoder::restore(10, 1000, &saved).is_none(),
        "its text is over the new max_line"
    );
    assert!(
        Decoder::restore(100, 40, &saved).is_none(),
        "its message is over the new cap"
    );
    for cut in 0..saved.len() {
        assert!(
            Decoder::restore(100, 1000, &saved[..cut]).is_none(),
            "cut to {cut} bytes"
        );
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert!(Decoder::restore(100, 1000, &longer).is_none());
    let mut other = saved.clone();
    other[0] = VERSION + 1;
    assert!(Decoder::restore(100, 1000, &other).is_none(), "another version's state");
    // A header of 14 bytes is whole: no decoder holds one half read.
    let whole = [0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(Decoder::restore(100, 1000, &state(&whole, None, None)).is_none());
    assert!(Decoder::restore(100, 1000, &state(&whole[..13], None, None)).is_some());
}

/// A saved state, field by field (postcard writes a tuple as it writes the struct): `header` half
/// read, a `frame` (opcode, left, read; final, masked with zeros), a text `message` (its length).
fn state(header: &[u8], frame: Option<(u8, u64, u64)>, message: Option<u64>) -> Vec<u8> {
    let frame = frame.map(|(opcode, left, read)| (opcode, true, [0u8; 4], left, read));
    let message = message.map(|len| (true, len, false));
    let no_bytes: &[u8] = &[];
    postcard::to_allocvec(&(VERSION, header, frame, message, no_bytes, no_bytes, false)).unwrap()
}

#[test]
fn a_garbled_state_is_refused() {
    let fits = |frame, message| Decoder::restore(100, 1000, &state(&[], frame, message)).is_some();
    assert!(fits(Some((9, 100, 25)), None), "a ping within 125 bytes");
    assert!(!fits(Some((9, 100, 26)), None), "a ping over 125 bytes");
    assert!(!fits(Some((9, u64::MAX, 1)), None), "a ping past any length");
    for reserved in [3, 7, 11, 15] {
        assert!(!fits(Some((reserved, 1, 0)), Some(0)), "reserved opcode {reserved}");
    }
    for beyond in [16, 0x81, 0xff] {
        assert!(!fits(Some((beyond, 1, 0)), Some(0)), "opcode {beyond}");
    }
    assert!(fits(Some((1, 10, 0)), Some(0)));
    assert!(!fits(Some((1, 10, 0)), None), "a data frame without its message");
    assert!(
        !fits(Some((0, 10, 11)), Some(10)),
        "a frame that read more than its message"
    );
    assert!(fits(Some((0, 10, 0)), Some(990)));
    assert!(!fits(Some((0, 11, 0)), Some(990)), "a message that would pass the cap");
    assert!(!fits(Some((0, u64::MAX, 0)), Some(990)), "a frame past any length");
    assert!(!fits(None, Some(1001)), "a message past the cap");
    assert!(
        Decoder::restore(100, 1000, &state(&[0x81], Some((1, 10, 0)), Some(0))).is_none(),
        "a header half read inside a frame"
    );
}

/// Decoders in the same state: the same fields, but for the header array past its length (what
/// earlier headers left there).
impl PartialEq for Decoder {
    fn eq(&self, other: &Self) -> bool {
        let Decoder {
            max_line,
            max_message,
            header,
            header_len,
            frame,
            message,
            data,
            control,
            failed,
        } = self;
        (
            *max_line,
            *max_message,
            &header[..*header_len],
            frame,
            message,
            data,
            control,
            failed,
        ) == (
            other.max_line,
            other.max_message,
            &other.header[..other.header_len],
            &other.frame,
            &other.message,
            &other.data,
            &other.control,
            &other.failed,
        )
    }
}

#[test]
fn a_saved_state_of_every_phase_comes_back_equal() {
    let mut bytes = client(true, 1, b"hi");
    bytes.extend(client(false, 1, "héllo ".as_bytes()));
    bytes.extend(client(true, 9, b"ping"));
    bytes.extend(client(true, 0, b"world"));
    bytes.extend(client(true, 1, &[b'z'; 300]));
    bytes.extend(client(true, 2, &[1, 2, 3]));
    bytes.extend(client(true, 10, b""));
    // A header announcing 2^62 bytes: gathered to its end, then the connection fails.
    bytes.extend([0x81, 0x80 | 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    bytes.extend(client(true, 1, b"ignored"));
    let mut d = Decoder::new(100, 1000);
    let (mut headers, mut frames, mut between, mut too_long) = (0, Vec::new(), false, false);
    for (at, &byte) in bytes.iter().enumerate() {
        decode(&mut d, &[byte]);
        let restored = Decoder::restore(100, 1000, &d.save());
        assert_eq!(restored.as_ref(), Some(&d), "after byte {at}");
        headers = headers.max(d.header_len);
        if let Some(frame) = d.frame
            && !frames.contains(&frame.opcode)
        {
            frames.push(frame.opcode);
        }
        between |= d.frame.is_none() && d.message.is_some();
        too_long |= d.message.is_some_and(|m| m.too_long);
    }
    assert!(d.failed);
    assert_eq!(headers, 13, "a header half read at every length");
    for opcode in [
        OpCode::Data(Data::Text),
        OpCode::Data(Data::Binary),
        OpCode::Data(Data::Continue),
        OpCode::Control(Control::Ping),
    ] {
        assert!(frames.contains(&opcode), "no {opcode:?} frame under way");
    }
    assert!(between, "never between fragments");
    assert!(too_long, "never in a message too long");
}

proptest! {
    #[test]
    fn restoring_any_bytes_never_panics(
        version in prop_oneof![Just(VERSION), any::<u8>()],
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        input in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Some(mut d) = Decoder::restore(100, 1000, &[&[version][..], &bytes].concat()) {
            decode(&mut d, &input);
            prop_assert!(d.data.len() <= 100);
        }
    }

    #[test]
    fn any_state_it_takes_is_one_it_can_go_on_from(
        header in prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..16)],
        frame in prop::option::of((0..16u8, 0..1100u64, 0..1100u64)),
        message in prop::option::of(prop_oneof![0..1100u64, any::<u64>()]),
        input in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Some(mut d) = Decoder::restore(100, 1000, &state(&header, frame, message)) {
            let again = Decoder::restore(100, 1000, &d.save());
            prop_assert_eq!(again.as_ref(), Some(&d));
            decode(&mut d, &input);
            prop_assert!(d.data.len() <= 100 && d.control.len() <= MAX_CONTROL);
        }
    }
}

#[test]
fn too_long_is_skipped_without_buffering_and_too_big_fails() {
    let mut d = Decoder::new(10, 100);
    let mut bytes = client(false, 1, &[b'a'; 8]);
    bytes.extend(client(true, 0, &[b'b'; 50]));
    bytes.extend(client(true, 1, b"ok"));
    let items = decode(&mut d, &bytes);
    assert_eq!(items, [Item::TooLong, Item::Text("ok".into())]);
    assert!(d.data.capacity() <= 10);
    let mut d = Decoder::new(10, 100);
    assert_eq!(
        decode(&mut d, &client(true, 1, &[b'c'; 101])),
        [Item::Fail(TOO_BIG, "message too big")]
    );
    // A header announcing 2^62 bytes fails before any byte of it.
    let mut d = Decoder::new(10, 100);
    let mut huge = vec![0x81, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
    huge.extend_from_slice(&[0; 4]);
    assert_eq!(decode(&mut d, &huge), [Item::Fail(TOO_BIG, "message too big")]);
}

#[test]
fn violations_fail_the_connection() {
    let cases: [(Vec<u8>, u16); 6] = [
        (vec![0x81, 0x02, b'h', b'i'], PROTOCOL_ERROR), // unmasked
        (client(true, 3, b"x"), PROTOCOL_ERROR),        // reserved opcode
        (client(true, 0, b"x"), PROTOCOL_ERROR),        // continuation first
        (client(false, 9, b"x"), PROTOCOL_ERROR),       // fragmented ping
        (client(true, 9, &[0; 126]), PROTOCOL_ERROR),   // oversized ping
        (client(true, 1, &[0xff, 0xfe]), INVALID_DATA), // not UTF-8
    ];
    for (bytes, code) in cases {
        let mut d = Decoder::new(100, 1000);
        let items = decode(&mut d, &bytes);
        assert!(
            matches!(items.as_slice(), [Item::Fail(c, _)] if *c == code),
            "{bytes:?}: {items:?}"
        );
    }
    let mut d = Decoder::new(100, 1000);
    let mut bytes = client(false, 1, b"a");
    bytes.extend(client(true, 1, b"b"));
    assert!(matches!(
        decode(&mut d, &bytes).as_slice(),
        [Item::Fail(PROTOCOL_ERROR, _)]
    ));
    let mut d = Decoder::new(100, 1000);
    let mut rsv = client(true, 1, b"a");
    rsv[0] |= 0x40;
    assert!(matches!(
        decode(&mut d, &rsv).as_slice(),
        [Item::Fail(PROTOCOL_ERROR, _)]
    ));
}

#[test]
fn binary_is_reported_and_empty_text_is_a_line() {
    let mut d = Decoder::new(100, 1000);
    let mut bytes = client(true, 2, &[1, 2, 3]);
    bytes.extend(client(true, 1, b""));
    assert_eq!(decode(&mut d, &bytes), [Item::Binary, Item::Text(String::new())]);
}

#[test]
fn server_frames_are_unmasked_and_sized() {
    assert_eq!(&text("hi")[..], b"\x81\x02hi");
    assert_eq!(&pong(b"")[..], b"\x8a\x00");
    assert_eq!(&close(1000, "bye")[..], b"\x88\x05\x03\xe8bye");
    let long = text(&"x".repeat(300));
    assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
    assert_eq!(long.len(), 304);
}
