//! The flow of lines to the kernel and the link's waits for clients behind, with paused time.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::chat::ChatError;
use crate::chat::Login;
use crate::wire::Upstream;
use std::net::SocketAddr;

fn peer() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn lines_past_the_inflight_bound_wait_for_acks_or_are_busy_while_the_kernel_is_down() {
    let (tx, mut rx) = mpsc::channel(UPSTREAM);
    let sessions = Sessions::new(tx, None);
    let (session, _out) = sessions.open(peer()).await;
    assert!(matches!(rx.recv().await, Some(Upstream::Open { .. })));
    // Kernel down: the bound's worth queue, the next is busy.
    for i in 0..MAX_INFLIGHT {
        assert_eq!(session.line(format!("l{i}")).await, Ok(()));
    }
    assert_eq!(session.line("over".into()).await, Err(ChatError::ServerBusy));
    // Kernel up: the next waits until an acknowledgement makes room.
    sessions.set_kernel(true);
    let waiting = session.line("waits".into());
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), waiting.as_mut())
            .await
            .is_err(),
        "a busy kernel slows the reader, it does not refuse"
    );
    sessions.acked(session.id);
    sessions.acks_done();
    assert_eq!(waiting.await, Ok(()));
    // And if the kernel goes down while it waits, it is busy.
    let waiting = session.line("then".into());
    tokio::pin!(waiting);
    assert!(futures_util::poll!(waiting.as_mut()).is_pending());
    sessions.set_kernel(false);
    assert_eq!(waiting.await, Err(ChatError::ServerBusy));
    let mut queued = 0;
    while let Ok(Upstream::Line { .. }) = rx.try_recv() {
        queued += 1;
    }
    assert_eq!(queued, MAX_INFLIGHT + 1);
}

#[tokio::test(start_paused = true)]
async fn the_link_waits_for_a_client_behind_but_not_for_a_shut_socket_nor_too_long() {
    let (tx, _rx) = mpsc::channel(UPSTREAM);
    let sessions = Sessions::new(tx, None);
    let mut clients = Vec::new();
    for i in 0..3 {
        let (session, out) = sessions.open(peer()).await;
        sessions.set_login(
            session.id,
            Some(Login {
                name: format!("c{i}"),
                seq: i,
            }),
        );
        clients.push((session, out));
    }
    sessions.deliver_logged_in(&Bytes::from(vec![b'x'; BEHIND_BYTES + 1]), 1);
    let mut batches: Vec<_> = clients.iter().map(|_| std::collections::VecDeque::new()).collect();
    for ((_, out), batch) in clients.iter_mut().zip(&mut batches) {
        out.next(batch).await;
    }
    // Shut sockets: waited for 100 ms.
    for (_, out) in &clients {
        out.blocked(Instant::now());
    }
    let started = Instant::now();
    sessions.hold_back().await;
    assert_eq!(started.elapsed(), HOLD_BACK.blocked);
    // Others fall behind, their sockets taking bytes slowly: waited for, as long as the
    // share of time allows.
    let mut slow = Vec::new();
    for i in 3..6 {
        let (session, mut out) = sessions.open(peer()).await;
        sessions.set_login(
            session.id,
            Some(Login {
                name: format!("c{i}"),
                seq: i,
            }),
        );
        session.outbox.push(Bytes::from(vec![b'y'; BEHIND_BYTES]), false);
        let mut batch = std::collections::VecDeque::new();
        out.next(&mut batch).await;
        slow.push((session, out));
    }
    sessions.deliver_logged_in(&Bytes::from(vec![b'y'; 10]), 2);
    for (_, out) in &slow {
        out.sent(1);
    }
    let started = Instant::now();
    sessions.hold_back().await;
    let held = started.elapsed();
    assert!(held >= Duration::from_millis(800) && held <= HOLD_BACK.hold, "{held:?}");
    assert!(
        clients.iter().chain(&slow).all(|(s, _)| s.outbox.dropped().is_none()),
        "nobody dropped"
    );
    // The budget is spent: for a while the link does not wait at all.
    sessions.deliver_logged_in(&Bytes::from(vec![b'z'; BEHIND_BYTES]), 3);
    let started = Instant::now();
    sessions.hold_back().await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_behind_on_its_own_replies_waits_and_holds_nobody_up() {
    let (tx, _rx) = mpsc::channel(UPSTREAM);
    let sessions = Sessions::new(tx, None);
    let (session, mut out) = sessions.open(peer()).await;
    session.reply(Bytes::from(vec![b'u'; BEHIND_BYTES + 1]));
    let started = Instant::now();
    sessions.hold_back().await;
    assert_eq!(started.elapsed(), Duration::ZERO, "the link does not wait for it");
    let waiting = session.caught_up();
    tokio::pin!(waiting);
    assert!(
        futures_util::poll!(waiting.as_mut()).is_pending(),
        "its own input waits"
    );
    let mut batch = std::collections::VecDeque::new();
    out.next(&mut batch).await;
    out.sent(BEHIND_BYTES);
    waiting.await;
}
