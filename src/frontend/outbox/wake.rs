//! How an outbox wakes its one writer, without a waiter kept in every idle connection's task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// Wakes the outbox's one writer. A `Notify` would do, but its wait keeps a waiter of 64 bytes in
/// every idle connection's task; this one polls in place.
#[derive(Default)]
pub(super) struct Wake {
    /// A wake not yet taken.
    pending: AtomicBool,
    writer: AtomicWaker,
}

impl Wake {
    pub(super) fn notify(&self) {
        self.pending.store(true, Ordering::Release);
        self.writer.wake();
    }

    /// Completes at the first wake since the last wait completed. One task waits at a time.
    pub(super) fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.pending.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.writer.register(cx.waker());
            // A wake between the first look and the registration found no waker: look again.
            if self.pending.swap(false, Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}
