//! The writer's side of an outbox: batches to write, and what was written, which is how far the
//! client's output got (recorded in the journal for the next process) and whether it caught up.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

use super::{BEHIND_BYTES, Dropped, KEEP_CAPACITY, Next, Outbox, OutboxRx, Queue};

impl OutboxRx {
    /// Completes once the client is dropped, with why: race it against anything that may never
    /// finish.
    pub async fn dropped(&self) -> Dropped {
        loop {
            if let Some(why) = self.lock().dropped {
                return why;
            }
            // Taking a wake meant for `next` is harmless: `next` looks at the queue first.
            self.0.wake.wait().await;
        }
    }

    /// Waits for work. On [`Next::Send`] every queued message has been moved into `batch` (which
    /// must be empty); report what is written with [`sent`](Self::sent).
    pub async fn next(&mut self, batch: &mut VecDeque<Bytes>) -> Next {
        if batch.capacity() > KEEP_CAPACITY {
            *batch = VecDeque::new();
        }
        loop {
            {
                let mut queue = self.lock();
                if let Some(why) = queue.dropped {
                    return Next::Dropped(why);
                }
                if !queue.items.is_empty() {
                    std::mem::swap(&mut queue.items, batch);
                    queue.writing += std::mem::take(&mut queue.queued);
                    queue.pong = None;
                    return Next::Send;
                }
                if queue.close {
                    return Next::Close;
                }
                // Going idle: no buffer is held while nothing waits, on either side of the swap.
                if queue.items.capacity() > 0 {
                    queue.items = VecDeque::new();
                }
            }
            if batch.capacity() > 0 {
                *batch = VecDeque::new();
            }
            self.0.wake.wait().await;
        }
    }

    /// `n` bytes of the batch are about to be written: if the process dies inside that write,
    /// the next one cannot know how much reached the client (see [`crate::journal`]).
    pub fn writing(&self, n: usize) {
        let Some(slot) = &self.0.slot else { return };
        if n == 0 {
            slot.writing(0, 0);
            return;
        }
        let queue = self.lock();
        let end = queue.written + n as u64;
        let completes = queue
            .marks
            .iter()
            .take_while(|(e, _)| *e <= end)
            .last()
            .map_or(0, |(_, seq)| *seq);
        slot.writing(completes, queue.base + end);
    }

    /// `n` bytes of the batch reached the socket.
    pub fn sent(&self, n: usize) {
        let mut queue = self.lock();
        queue.writing = queue.writing.saturating_sub(n);
        queue.blocked_since = None;
        queue.written += n as u64;
        let written = queue.written;
        if queue.marks.front().is_some_and(|(end, _)| *end <= written) {
            while let Some((_, seq)) = queue.marks.pop_front_if(|(end, _)| *end <= written) {
                queue.written_seq = seq;
            }
            if queue.marks.is_empty() {
                queue.marks = VecDeque::new();
            }
            if let Some(slot) = &self.0.slot {
                slot.output(queue.written_seq, !queue.marks.is_empty());
            }
        }
        if queue.behind_since.is_some() && queue.waiting() <= BEHIND_BYTES {
            queue.behind_since = None;
            drop(queue);
            self.0.room.notify_waiters();
        }
    }

    /// The socket refused bytes (would block); returns since when it has been refusing.
    pub fn blocked(&self, now: Instant) -> Instant {
        *self.lock().blocked_since.get_or_insert(now)
    }

    /// Drops the client (the writer found it not reading).
    pub fn drop_client(&self, why: Dropped) -> bool {
        Outbox(self.0.clone()).drop_client(why)
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Queue> {
        self.0.queue.lock()
    }
}
