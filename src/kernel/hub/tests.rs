//! The hub driven through its channels, with paused time.

use super::*;
use crate::chat::Event;
use crate::wire::Downstream;

/// A frontend as the hub sees it: the receiving end of its writer's queue.
struct Fake {
    id: FrontendId,
    rx: mpsc::UnboundedReceiver<(u64, Bytes)>,
    progress: Arc<Progress>,
}

fn attach(id: FrontendId, name: &str, sessions: Vec<(SessionId, Option<Login>)>) -> (Input, Fake) {
    let (tx, rx) = mpsc::unbounded_channel();
    let progress = Arc::new(Progress::default());
    let input = Input::Attach {
        frontend: id,
        name: name.into(),
        instance: u64::from(id),
        sessions,
        resume: None,
        outbox: tx,
        progress: progress.clone(),
    };
    (input, Fake { id, rx, progress })
}

impl Fake {
    /// Every event delivered so far, as plain text (each batch marked written).
    fn events(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        while let Ok((batch, bytes)) = self.rx.try_recv() {
            self.progress.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
            self.progress.written.store(batch, Ordering::Release);
            let mut rest = &bytes[..];
            while rest.len() >= 4 {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                if let Ok(Downstream::Deliver { event, .. }) = Downstream::decode(&rest[4..4 + len]) {
                    events.push(event.plain());
                }
                rest = &rest[4 + len..];
            }
        }
        events
    }

    fn frame(&self, seq: u64, message: Upstream) -> Input {
        Input::Frame {
            frontend: self.id,
            seq,
            message,
        }
    }
}

fn line(session: SessionId, line: &str) -> Upstream {
    Upstream::Line {
        session,
        line: line.into(),
    }
}

/// Lets the hub task run until it waits again.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_hub_holds_frames_until_every_expected_frontend_is_back() {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(rx, vec!["a".into(), "b".into()], Arc::new(Notify::new()), None));
    let bob = Some(Login {
        name: "bob".into(),
        seq: 1,
    });
    let (input, mut a) = attach(1, "a", vec![(1, bob)]);
    tx.send(input).await.unwrap();
    tx.send(a.frame(1, line(1, "msgall early"))).await.unwrap();
    settle().await;
    tokio::time::advance(RESTORE_WINDOW / 2).await;
    settle().await;
    assert!(a.events().is_empty(), "applied before b's hello");
    let (input, mut b) = attach(2, "b", vec![(7, None)]);
    tx.send(input).await.unwrap();
    settle().await;
    assert!(a.events().iter().any(|e| e.ends_with("[bob]: early")));
    assert!(b.events().is_empty(), "b has nobody logged in");
}

#[tokio::test(start_paused = true)]
async fn the_restore_window_ends_without_a_missing_frontend() {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(rx, vec!["a".into(), "gone".into()], Arc::new(Notify::new()), None));
    let amy = Some(Login {
        name: "amy".into(),
        seq: 1,
    });
    let (input, mut a) = attach(1, "a", vec![(1, amy)]);
    tx.send(input).await.unwrap();
    tx.send(a.frame(1, line(1, "/whoami"))).await.unwrap();
    settle().await;
    tokio::time::advance(RESTORE_WINDOW - Duration::from_millis(1)).await;
    settle().await;
    assert!(a.events().is_empty());
    tokio::time::advance(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(
        a.events(),
        [Event::WhoAmI {
            name: "amy".into(),
            raw: true
        }
        .plain()]
    );
}

impl Fake {
    /// Every frame received so far, each batch marked written; `written` tells the hub.
    fn frames(&mut self, written: &Notify) -> Vec<Downstream> {
        let mut frames = Vec::new();
        while let Ok((batch, bytes)) = self.rx.try_recv() {
            self.progress.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
            self.progress.written.store(batch, Ordering::Release);
            let mut rest = &bytes[..];
            while rest.len() >= 4 {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                frames.push(Downstream::decode(&rest[4..4 + len]).unwrap());
                rest = &rest[4 + len..];
            }
        }
        written.notify_one();
        frames
    }
}

fn acks(frames: &[Downstream]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            Downstream::Ack { seq } => Some(*seq),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_rides_with_the_next_frames_or_goes_alone_after_the_delay() {
    let (tx, rx) = mpsc::channel(QUEUE);
    let written = Arc::new(Notify::new());
    tokio::spawn(run(rx, Vec::new(), written.clone(), None));
    let login = |name: &str, seq| Some(Login { name: name.into(), seq });
    let (input, mut a) = attach(1, "a", vec![(1, login("amy", 1))]);
    tx.send(input).await.unwrap();
    let (input, mut b) = attach(2, "b", vec![(1, login("bob", 2))]);
    tx.send(input).await.unwrap();
    settle().await;
    a.frames(&written);
    b.frames(&written);

    // A frame that causes nothing (a session opening): its acknowledgement waits for the delay.
    tx.send(a.frame(1, Upstream::Open { session: 2 })).await.unwrap();
    settle().await;
    assert!(
        a.frames(&written).is_empty(),
        "no batch of its own for an acknowledgement"
    );
    tokio::time::advance(ACK_DELAY - Duration::from_millis(1)).await;
    settle().await;
    assert!(a.frames(&written).is_empty(), "before the delay");
    tokio::time::advance(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(a.frames(&written), [Downstream::Ack { seq: 1 }]);

    // The next one rides with the next frames for a: b's message to amy.
    tx.send(a.frame(2, Upstream::Open { session: 3 })).await.unwrap();
    settle().await;
    tx.send(b.frame(1, line(1, "msg amy yo"))).await.unwrap();
    settle().await;
    let frames = a.frames(&written);
    assert!(matches!(frames[0], Downstream::Deliver { .. }), "{frames:?}");
    assert_eq!(acks(&frames), [2]);
}

/// A frontend's next process says hello before its previous connection has ended (its last
/// frames still unread): the hello and what follows wait for that end, then the sessions carry
/// on, its last line applied first and the new one after it.
#[tokio::test(start_paused = true)]
async fn a_new_process_waits_for_its_previous_connection_to_end() {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(rx, vec![], Arc::new(Notify::new()), None));
    let ann = Some(Login {
        name: "ann".into(),
        seq: 1,
    });
    let (input, mut watcher) = attach(1, "watch", vec![(1, ann.clone())]);
    tx.send(input).await.unwrap();
    let bob = Some(Login {
        name: "bob".into(),
        seq: 2,
    });
    let (input, old) = attach(2, "web", vec![(1, bob)]);
    tx.send(input).await.unwrap();
    settle().await;
    watcher.events();
    // The new process's hello and line come while the old connection still has a line to read.
    let (input, mut new) = attach(3, "web", vec![(1, None)]);
    tx.send(input).await.unwrap();
    tx.send(new.frame(1, line(1, "msgall second"))).await.unwrap();
    settle().await;
    assert!(watcher.events().is_empty(), "held until the old connection ends");
    tx.send(old.frame(1, line(1, "msgall first"))).await.unwrap();
    tx.send(Input::Detach {
        frontend: 2,
        wait: true,
    })
    .await
    .unwrap();
    settle().await;
    let seen = watcher.events();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].ends_with("[bob]: first") && seen[1].ends_with("[bob]: second"),
        "{seen:?}"
    );
    assert!(new.events().iter().all(|e| !e.contains("logout")), "nobody logged out");
}
