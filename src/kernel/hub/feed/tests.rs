//! Numbering, keeping and replaying what a frontend is sent.

use super::*;
use crate::wire::Downstream;

fn frames(messages: &[Downstream]) -> Bytes {
    let mut buf = BytesMut::new();
    for m in messages {
        m.encode(&mut buf);
    }
    buf.freeze()
}

fn close(session: u64) -> Downstream {
    Downstream::Close { session }
}

fn decode(mut bytes: &[u8]) -> Vec<Downstream> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(Downstream::decode(&bytes[4..4 + len]).unwrap());
        bytes = &bytes[4 + len..];
    }
    out
}

#[test]
fn a_replay_is_every_numbered_frame_after_the_position_acknowledgements_left_out() {
    let now = Instant::now();
    let mut feed = Feed::default();
    // Frames 1 and 2, with an acknowledgement between them.
    feed.numbered();
    feed.numbered();
    feed.keep(frames(&[close(1), Downstream::Ack { seq: 9 }, close(2)]), now);
    // Frame 3.
    feed.numbered();
    feed.keep(frames(&[close(3)]), now);
    assert_eq!(feed.next(), 4);
    assert_eq!(decode(&feed.since(0).unwrap()), vec![close(1), close(2), close(3)]);
    assert_eq!(decode(&feed.since(1).unwrap()), vec![close(2), close(3)]);
    assert_eq!(decode(&feed.since(3).unwrap()), vec![]);
    assert!(feed.since(4).is_none(), "never sent");
}

#[test]
fn what_is_forgotten_cannot_be_replayed() {
    let now = Instant::now();
    let mut feed = Feed::default();
    feed.numbered();
    feed.keep(frames(&[close(1)]), now);
    feed.numbered();
    feed.keep(frames(&[close(2)]), now + KEEP / 2);
    feed.expire(now + KEEP);
    assert!(feed.since(0).is_none(), "frame 1 is gone");
    assert_eq!(decode(&feed.since(1).unwrap()), vec![close(2)]);
    assert_eq!(feed.expiry(), Some(now + KEEP / 2 + KEEP));
    feed.expire(now + 2 * KEEP);
    assert_eq!(decode(&feed.since(2).unwrap()), vec![], "nothing missed");
    assert!(feed.since(1).is_none());
}

#[test]
fn what_a_frontend_that_comes_back_is_sent_again() {
    let now = Instant::now();
    let mut feed = Feed::default();
    feed.numbered();
    feed.numbered();
    feed.keep(frames(&[close(1), close(2)]), now);
    feed.expire(now);
    let from = |after, closes: &[u64]| Replay::From {
        after,
        frames: BytesMut::from(&frames(&closes.iter().map(|s| close(*s)).collect::<Vec<_>>())[..]),
    };
    #[rustfmt::skip]
    let table = [
        ("where it left off, this kernel",       Some((7, 0)), from(0, &[1, 2])),
        ("one handled already",                  Some((7, 1)), from(1, &[2])),
        ("all handled",                          Some((7, 2)), from(2, &[])),
        ("past what was sent",                   Some((7, 3)), Replay::Gone { after: 3 }),
        ("another kernel's numbers",             Some((6, 1)), Replay::Fresh),
        ("nowhere",                              None, Replay::Fresh),
    ];
    for (case, resume, expected) in table {
        assert_eq!(replay(&feed, 7, resume), expected, "{case}");
    }
    feed.expire(now + KEEP);
    assert_eq!(replay(&feed, 7, Some((7, 0))), Replay::Gone { after: 0 }, "forgotten");
}

#[test]
fn the_bound_in_bytes_forgets_the_oldest_first() {
    let now = Instant::now();
    let mut feed = Feed::default();
    let big = Bytes::from(vec![0u8; KEEP_BYTES / 2 + 1]);
    for _ in 0..3 {
        feed.keep(big.clone(), now);
    }
    assert_eq!(feed.kept.len(), 1);
}
