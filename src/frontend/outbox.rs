//! A client's outgoing queue: bounded in bytes, drained a batch at a time by the client's writer,
//! and holding no buffer while it is empty, so that an idle connection costs little.
//!
//! The kernel link pushes rendered messages; the client's reader pushes its own replies; the
//! writer takes everything queued in one go. A client whose queue passes [`OUTBOX_BYTES`] is
//! killed: its writer stops at once and the connection closes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Bytes queued for one client before it counts as not reading and is dropped. One message
/// always fits in an empty queue, however large.
pub const OUTBOX_BYTES: usize = 1 << 20;
/// A drained batch buffer larger than this is given back rather than kept for the next batch.
const KEEP_CAPACITY: usize = 16;

/// A rendered message for a client: telnet bytes or a WebSocket text.
pub trait Payload: Clone + Send + 'static {
    /// Bytes it takes in a queue.
    fn size(&self) -> usize;
}

impl Payload for bytes::Bytes {
    fn size(&self) -> usize {
        self.len()
    }
}

impl Payload for axum::extract::ws::Utf8Bytes {
    fn size(&self) -> usize {
        self.len()
    }
}

struct Queue<T> {
    items: VecDeque<T>,
    bytes: usize,
    /// Close after what is queued (the user logged out).
    close: bool,
    /// Stop now (the client is not reading).
    killed: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    /// Wakes the writer; a wake with no writer waiting is kept for its next wait.
    wake: Notify,
}

/// The pushing side; cheap to clone.
pub struct Outbox<T>(Arc<Shared<T>>);

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// The writer's side.
pub struct OutboxRx<T>(Arc<Shared<T>>);

/// What the writer is to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send the batch it was handed.
    Send,
    /// Everything is sent; close the connection.
    Close,
    /// Drop the connection now.
    Killed,
}

/// A new, empty outbox.
pub fn outbox<T: Payload>() -> (Outbox<T>, OutboxRx<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            bytes: 0,
            close: false,
            killed: false,
        }),
        wake: Notify::new(),
    });
    (Outbox(shared.clone()), OutboxRx(shared))
}

impl<T: Payload> Outbox<T> {
    /// Queues a message. Past [`OUTBOX_BYTES`] the client is killed instead and this is false.
    pub fn push(&self, message: T) -> bool {
        let mut queue = self.lock();
        if queue.killed {
            return false;
        }
        let size = message.size();
        if queue.bytes > 0 && queue.bytes + size > OUTBOX_BYTES {
            queue.killed = true;
            queue.items = VecDeque::new();
            drop(queue);
            self.0.wake.notify_one();
            return false;
        }
        queue.bytes += size;
        queue.items.push_back(message);
        drop(queue);
        self.0.wake.notify_one();
        true
    }

    /// Closes the connection once everything queued is sent.
    pub fn close(&self) {
        self.lock().close = true;
        self.0.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        self.0.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Payload> OutboxRx<T> {
    /// Completes once the client is killed: race it against a write that may never finish
    /// (a client that stopped reading).
    pub async fn killed(&self) {
        loop {
            if self.0.queue.lock().unwrap_or_else(|e| e.into_inner()).killed {
                return;
            }
            // Taking a wake meant for `next` is harmless: `next` looks at the queue first.
            self.0.wake.notified().await;
        }
    }

    /// Waits for work. On [`Next::Send`] every queued message has been moved into `batch` (which
    /// must be empty).
    pub async fn next(&mut self, batch: &mut VecDeque<T>) -> Next {
        if batch.capacity() > KEEP_CAPACITY {
            *batch = VecDeque::new();
        }
        loop {
            {
                let mut queue = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.killed {
                    return Next::Killed;
                }
                if !queue.items.is_empty() {
                    std::mem::swap(&mut queue.items, batch);
                    queue.bytes = 0;
                    return Next::Send;
                }
                if queue.close {
                    return Next::Close;
                }
            }
            self.0.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn batches_then_close() {
        let (tx, mut rx) = outbox::<Bytes>();
        assert!(tx.push(Bytes::from_static(b"a")));
        assert!(tx.push(Bytes::from_static(b"b")));
        tx.close();
        let mut batch = VecDeque::new();
        assert_eq!(rx.next(&mut batch).await, Next::Send);
        assert_eq!(batch, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        batch.clear();
        assert_eq!(rx.next(&mut batch).await, Next::Close);
    }

    #[tokio::test]
    async fn a_full_queue_kills_the_client() {
        let (tx, mut rx) = outbox::<Bytes>();
        // One message fits whatever its size; the next one past the bound kills.
        assert!(tx.push(Bytes::from(vec![0u8; OUTBOX_BYTES + 10])));
        assert!(!tx.push(Bytes::from_static(b"x")));
        assert!(!tx.push(Bytes::from_static(b"y")), "stays killed");
        let mut batch = VecDeque::new();
        assert_eq!(rx.next(&mut batch).await, Next::Killed);
    }

    #[tokio::test]
    async fn a_kill_interrupts_a_stuck_writer() {
        let (tx, rx) = outbox::<Bytes>();
        let stuck = async {
            tokio::select! {
                _ = std::future::pending::<()>() => false,
                _ = rx.killed() => true,
            }
        };
        let filler = async {
            assert!(tx.push(Bytes::from(vec![0u8; OUTBOX_BYTES])));
            assert!(!tx.push(Bytes::from_static(b"one too many")));
        };
        let (killed, ()) = tokio::join!(stuck, filler);
        assert!(killed);
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept() {
        let (tx, mut rx) = outbox::<Bytes>();
        let writer = tokio::spawn(async move {
            let mut batch = VecDeque::new();
            rx.next(&mut batch).await;
            batch.len()
        });
        tx.push(Bytes::from_static(b"late"));
        assert_eq!(writer.await.unwrap(), 1);
    }
}
