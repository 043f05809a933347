//! Unit tests of the outbox: bounds, drops, pongs, falling behind and catching up.

use super::*;

fn new() -> (Outbox, OutboxRx) {
    outbox(Arc::new(Notify::new()), None, 0, 0)
}

fn bytes(n: usize) -> Bytes {
    Bytes::from(vec![b'x'; n])
}

const LIMITS: HoldBack = HoldBack {
    hold: Duration::from_secs(1),
    blocked: Duration::from_millis(100),
};

#[tokio::test]
async fn batches_then_close() {
    let (tx, mut rx) = new();
    assert_eq!(tx.push(Bytes::from_static(b"a"), true), Pushed::Queued);
    tx.push(Bytes::from_static(b"b"), true);
    tx.close();
    assert_eq!(tx.push(Bytes::from_static(b"late"), true), Pushed::Ignored);
    let mut batch = VecDeque::new();
    assert_eq!(rx.next(&mut batch).await, Next::Send);
    assert_eq!(batch, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
    rx.sent(2);
    batch.clear();
    assert_eq!(rx.next(&mut batch).await, Next::Close);
}

#[tokio::test]
async fn past_the_bound_the_client_is_dropped_once() {
    let (tx, mut rx) = new();
    // One message fits whatever its size; the next one past the bound drops the client.
    assert_eq!(tx.push(bytes(OUTBOX_BYTES + 10), true), Pushed::Behind);
    assert_eq!(tx.push(Bytes::from_static(b"x"), true), Pushed::Dropped);
    assert_eq!(
        tx.push(Bytes::from_static(b"y"), true),
        Pushed::Ignored,
        "reported once"
    );
    let mut batch = VecDeque::new();
    assert_eq!(rx.next(&mut batch).await, Next::Dropped(Dropped::Full));
}

#[tokio::test]
async fn what_the_writer_holds_counts_until_sent() {
    let (tx, mut rx) = new();
    tx.push(bytes(OUTBOX_BYTES / 2), true);
    let mut batch = VecDeque::new();
    rx.next(&mut batch).await;
    // Stuck in the socket: the half it holds still counts.
    tx.push(bytes(OUTBOX_BYTES / 4), true);
    assert_eq!(tx.push(bytes(OUTBOX_BYTES / 2), true), Pushed::Dropped);
}

#[tokio::test]
async fn only_the_latest_pong_waits() {
    let (tx, mut rx) = new();
    tx.push(Bytes::from_static(b"chat"), true);
    for i in 0..10_000u32 {
        tx.push_pong(Bytes::from(i.to_string()));
    }
    let mut batch = VecDeque::new();
    rx.next(&mut batch).await;
    assert_eq!(batch, [Bytes::from_static(b"chat"), Bytes::from_static(b"9999")]);
    assert_eq!(tx.waiting(), 8);
    // Once sent, the next pong queues anew.
    tx.push_pong(Bytes::from_static(b"p"));
    assert_eq!(tx.waiting(), 9);
}

#[tokio::test]
async fn a_drop_interrupts_a_stuck_writer() {
    let (tx, rx) = new();
    let stuck = async {
        tokio::select! {
            _ = std::future::pending::<()>() => None,
            why = rx.dropped() => Some(why),
        }
    };
    let filler = async {
        tx.push(bytes(OUTBOX_BYTES), true);
        assert_eq!(tx.push(Bytes::from_static(b"one too many"), true), Pushed::Dropped);
    };
    let (why, ()) = tokio::join!(stuck, filler);
    assert_eq!(why, Some(Dropped::Full));
}

#[tokio::test]
async fn a_reply_never_asks_the_link_to_wait() {
    let (tx, _rx) = new();
    assert_eq!(tx.push(bytes(BEHIND_BYTES + 1), false), Pushed::Queued);
    assert!(tx.is_behind(), "behind all the same: its own input waits");
    assert_eq!(tx.push(bytes(10), true), Pushed::Queued, "the crossing was the reply's");
}

#[tokio::test(start_paused = true)]
async fn a_link_waits_a_while_and_not_for_a_shut_socket() {
    let start = Instant::now();
    let ms = |n| start + Duration::from_millis(n);
    let (tx, mut rx) = new();
    assert_eq!(tx.push_at(bytes(BEHIND_BYTES + 10_000), true, start), Pushed::Behind);
    assert_eq!(tx.wait_until(start, LIMITS), Some(start + LIMITS.hold));
    let mut batch = VecDeque::new();
    rx.next(&mut batch).await;
    // The socket takes part of it, then refuses.
    rx.sent(1000);
    assert_eq!(rx.blocked(ms(100)), ms(100));
    assert_eq!(rx.blocked(ms(150)), ms(100), "refusing since the first refusal");
    assert_eq!(tx.wait_until(ms(150), LIMITS), Some(ms(200)));
    assert_eq!(tx.wait_until(ms(200), LIMITS), None, "shut a while: not waited for");
    // Taking bytes again: waited for again, within its hold.
    rx.sent(1000);
    assert_eq!(tx.wait_until(ms(300), LIMITS), Some(start + LIMITS.hold));
    assert_eq!(tx.wait_until(start + LIMITS.hold, LIMITS), None);
    assert_eq!(tx.dropped(), None);
}

#[tokio::test(start_paused = true)]
async fn catching_up_wakes_the_link() {
    let start = Instant::now();
    let room = Arc::new(Notify::new());
    let (tx, mut rx) = outbox(room.clone(), None, 0, 0);
    tx.push_at(bytes(BEHIND_BYTES + 100), true, start);
    let mut batch = VecDeque::new();
    rx.next(&mut batch).await;
    let woken = room.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    rx.sent(200);
    woken.await;
    assert!(!tx.is_behind());
    assert_eq!(tx.wait_until(start, LIMITS), None, "caught up");
}

#[tokio::test]
async fn the_slot_says_how_far_the_kernel_frames_are_written() {
    use crate::journal::{PositionFile, Slot};
    let file = PositionFile::map(&PositionFile::create("test", 4).unwrap()).unwrap();
    let slot = Slot::new(&file, 2).unwrap();
    let output = |slot: &Slot| (slot.left().written, slot.left().pending);
    let (tx, mut rx) = outbox(Arc::new(Notify::new()), Some(slot.clone()), 10, 0);
    tx.push_numbered(Bytes::from_static(b"eleven"), true, 11);
    tx.push(Bytes::from_static(b"reply"), false);
    tx.push_numbered(Bytes::from_static(b"twelve"), true, 12);
    assert_eq!(output(&slot), (10, true), "pending from the first push");
    let mut batch = VecDeque::new();
    assert_eq!(rx.next(&mut batch).await, Next::Send);
    // "eleven" and half of "reply".
    rx.sent(8);
    assert_eq!(output(&slot), (11, true));
    rx.sent(3 + 6);
    assert_eq!(output(&slot), (12, false), "all written: nothing pending");
}
