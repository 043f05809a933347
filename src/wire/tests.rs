//! Round trips, truncations, garbage and oversized frames.

use bytes::{BufMut, BytesMut};

use super::decode::Reader;
use super::encode::error_code;
use super::*;
use tokio_util::codec::Decoder;

fn s(x: &str) -> String {
    x.to_string()
}

fn all_events() -> Vec<Event> {
    let mut events = vec![
        Event::Login { name: s("bob") },
        Event::Logout { name: s("Юля") },
        Event::Private {
            time: s("12:00:00"),
            from: s("a"),
            to: s("b"),
            text: s("hi  <b>"),
        },
        Event::Public {
            time: s("12:00:01"),
            from: s("a"),
            text: s(""),
        },
        Event::WhoAmI {
            name: s("a"),
            raw: true,
        },
        Event::UserList {
            names: vec![s("a"), s("b")],
            raw: false,
        },
        Event::UserList {
            names: vec![],
            raw: true,
        },
        Event::Help,
        Event::Greeting { motd: s("hello") },
        Event::LineLost,
        Event::Error(ChatError::NotFound(s("zed"))),
    ];
    for (code, error) in &ERRORS {
        if !matches!(error, ChatError::NotFound(_)) {
            let body = [8, *code];
            events.push(Reader(&body).event().unwrap());
        }
    }
    events
}

#[test]
fn error_codes_are_distinct_and_cover_every_error() {
    let mut codes: Vec<u8> = ERRORS.iter().map(|(code, _)| *code).collect();
    codes.dedup();
    assert_eq!(codes.len(), ERRORS.len());
    for (code, error) in &ERRORS {
        assert_eq!(error_code(error), *code);
    }
    assert_eq!(
        Reader(&[8, 200]).event(),
        Err(DecodeError::UnknownTag {
            what: "error",
            tag: 200
        })
    );
}

/// Splits a buffer of whole frames with the same codec the sockets use.
fn frames(bytes: &[u8]) -> Vec<BytesMut> {
    let mut buf = BytesMut::from(bytes);
    let mut codec = codec();
    let mut out = Vec::new();
    while let Some(frame) = codec.decode(&mut buf).unwrap() {
        out.push(frame);
    }
    assert!(buf.is_empty());
    out
}

#[test]
fn upstream_round_trips() {
    let messages = [
        Upstream::Hello {
            version: VERSION,
            frontend: s("twisted"),
            instance: 99,
            first: 12,
            resume: Some((7, 41)),
            sessions: vec![
                (1, None),
                (
                    u64::MAX,
                    Some(Login {
                        name: s("bob"),
                        seq: 42,
                    }),
                ),
            ],
        },
        Upstream::Open { session: 7 },
        Upstream::Line {
            session: 7,
            line: s("msgall héllo"),
        },
        Upstream::Closed { session: 7 },
        Upstream::Census,
        Upstream::Heartbeat,
        Upstream::Bye,
    ];
    let mut buf = BytesMut::new();
    for m in &messages {
        m.encode(&mut buf);
    }
    let decoded: Vec<_> = frames(&buf).iter().map(|f| Upstream::decode(f).unwrap()).collect();
    assert_eq!(decoded, messages);
}

#[test]
fn downstream_round_trips() {
    let mut messages = vec![
        Downstream::Welcome { version: VERSION },
        Downstream::Named {
            session: 3,
            login: Some(Login { name: s("a"), seq: 1 }),
        },
        Downstream::Named {
            session: 3,
            login: None,
        },
        Downstream::Close { session: 3 },
        Downstream::Census {
            frontends: vec![(s("web"), 3), (s("twisted"), 0)],
            nodes: vec![],
        },
        Downstream::Census {
            frontends: vec![(s("web"), 3)],
            nodes: vec![(s("other-host"), 5)],
        },
        Downstream::Ack { seq: 77 },
        Downstream::Heartbeat,
        Downstream::Sync {
            epoch: 3,
            next: 1,
            applied: 9,
        },
    ];
    for (i, event) in all_events().into_iter().enumerate() {
        let origin = (i % 2 == 1).then_some(Origin {
            instance: 5,
            seq: i as u64,
        });
        let to = if i % 3 == 2 {
            To::LoggedIn
        } else {
            To::Only((0..i as u64).collect())
        };
        messages.push(Downstream::Deliver { to, origin, event });
    }
    let mut buf = BytesMut::new();
    for m in &messages {
        m.encode(&mut buf);
    }
    let decoded: Vec<_> = frames(&buf).iter().map(|f| Downstream::decode(f).unwrap()).collect();
    assert_eq!(decoded, messages);
}

#[test]
fn partial_frames_wait_for_the_rest() {
    let mut whole = BytesMut::new();
    Upstream::Line {
        session: 1,
        line: s("msgall hi"),
    }
    .encode(&mut whole);
    let mut codec = codec();
    let mut buf = BytesMut::new();
    for (i, byte) in whole.iter().enumerate() {
        assert!(codec.decode(&mut buf).unwrap().is_none(), "complete after {i} bytes");
        buf.put_u8(*byte);
    }
    let frame = codec.decode(&mut buf).unwrap().unwrap();
    assert!(matches!(Upstream::decode(&frame), Ok(Upstream::Line { .. })));
}

#[test]
fn every_truncation_is_an_error() {
    let mut buf = BytesMut::new();
    Upstream::Hello {
        version: VERSION,
        frontend: s("web"),
        instance: 1,
        first: 1,
        sessions: vec![(1, Some(Login { name: s("x"), seq: 2 }))],
        resume: None,
    }
    .encode(&mut buf);
    let body = &buf[4..];
    for len in 0..body.len() {
        assert!(Upstream::decode(&body[..len]).is_err(), "{len}");
    }
}

#[test]
fn garbage_is_refused() {
    assert_eq!(Upstream::decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(
        Upstream::decode(b"GET / HTTP/1.1"),
        Err(DecodeError::UnknownTag {
            what: "frontend frame",
            tag: b'G'
        })
    );
    assert_eq!(Upstream::decode(b"\x01JUNK\x00\x01"), Err(DecodeError::BadMagic));
    assert_eq!(
        Upstream::decode(b"\x02\0\0\0\0\0\0\0\x01extra"),
        Err(DecodeError::Trailing(5))
    );
    assert_eq!(
        Upstream::decode(b"\x03\0\0\0\0\0\0\0\x01\0\0\0\x02\xff\xfe"),
        Err(DecodeError::BadUtf8)
    );
    // A count of four billion sessions in a tiny frame allocates nothing.
    assert_eq!(
        Upstream::decode(b"\x01CHAT\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\xff\xff\xff\xff"),
        Err(DecodeError::Truncated)
    );
    assert_eq!(Downstream::decode(b"\x82\xff\xff\xff\xff"), Err(DecodeError::Truncated));
}

#[test]
fn oversized_frames_are_refused_before_buffering() {
    let mut codec = codec();
    let mut buf = BytesMut::new();
    buf.put_u32(MAX_FRAME as u32 + 1);
    assert!(codec.decode(&mut buf).is_err());
}

#[test]
fn a_census_without_nodes_is_laid_out_as_an_earlier_build_reads_it() {
    let mut buf = BytesMut::new();
    Downstream::Census {
        frontends: vec![("web".to_string(), 3)],
        nodes: vec![],
    }
    .encode(&mut buf);
    // length, tag, one entry (count, name, users), and nothing after it.
    let mut earlier = vec![0, 0, 0, 20, 0x85, 0, 0, 0, 1, 0, 0, 0, 3];
    earlier.extend_from_slice(b"web");
    earlier.extend_from_slice(&3u64.to_be_bytes());
    assert_eq!(&buf[..], &earlier[..]);
}
