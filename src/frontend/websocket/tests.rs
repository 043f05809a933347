//! Unit tests of the WebSocket decoder (whole, split anywhere, saved and restored, refused) and
//! of the server's frames.

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
    assert!(Decoder::restore(100, 1000, &saved[..saved.len() - 1]).is_none());
    let mut longer = saved.clone();
    longer.push(0);
    assert!(Decoder::restore(100, 1000, &longer).is_none());
    assert!(Decoder::restore(100, 1000, &[MAX_HEADER as u8]).is_none());
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
