//! What the engine causes, into frames: each output encoded once and copied into the pending
//! buffer of every frontend it goes to, numbered in that frontend's feed; each frontend's pending
//! frames handed to its writer as one batch; and the acknowledgements of the frames whose effects
//! are all written (see [`Ledger`](crate::kernel::ledger::Ledger)).

use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::time::Instant;

use super::engine::Effects;
use super::feed::Feed;
use super::{ACK_DELAY, Frontend, Hub, MAX_QUEUED};
use crate::chat::{FrontendId, Output};
use crate::wire::{self, Downstream, Origin};

impl Hub {
    /// Encodes what the engine caused, and notes the frames it finished; `fx` is cleared for the
    /// next step.
    pub(super) fn emit(&mut self, fx: &mut Effects) {
        for (origin, outputs) in fx.batches() {
            self.encode(origin, outputs);
        }
        for (frontend, upto) in fx.done.drain(..) {
            if let Some(f) = self.frontends.get_mut(&frontend) {
                f.applied = Some(upto);
                f.last_applied = upto;
            }
        }
        fx.clear();
    }

    /// Where a frontend's frames go: its pending buffer and feed, attached or away.
    fn sink(&mut self, id: FrontendId) -> Option<(&mut BytesMut, &mut Feed)> {
        if let Some(f) = self.frontends.get_mut(&id) {
            return Some((&mut f.pending, &mut f.feed));
        }
        self.detached.get_mut(&id).map(|d| (&mut d.pending, &mut d.feed))
    }

    /// Encodes `outputs`, caused by the input `origin`, into each frontend's pending buffer,
    /// numbered.
    fn encode(&mut self, origin: Option<Origin>, outputs: &[Output]) {
        for output in outputs {
            match output {
                Output::Deliver { event, to } => {
                    let body = wire::encode_event(event);
                    for (frontend, sessions) in to {
                        if let Some((pending, feed)) = self.sink(*frontend) {
                            wire::encode_deliver(pending, Some(sessions), origin, &body);
                            feed.numbered();
                        }
                    }
                }
                Output::Broadcast { event, to } => {
                    tracing::trace!(?event, to = ?to.iter().map(|(f, _)| *f).collect::<Vec<_>>(), "broadcast");
                    let body = wire::encode_event(event);
                    for (frontend, _) in to {
                        if let Some((pending, feed)) = self.sink(*frontend) {
                            wire::encode_deliver(pending, None, origin, &body);
                            feed.numbered();
                        }
                    }
                }
                Output::Named { key, login } => {
                    if let Some((pending, feed)) = self.sink(key.frontend) {
                        Downstream::Named {
                            session: key.session,
                            login: login.clone(),
                        }
                        .encode(pending);
                        feed.numbered();
                    }
                }
                Output::Close(key) => {
                    if let Some((pending, feed)) = self.sink(key.frontend) {
                        Downstream::Close { session: key.session }.encode(pending);
                        feed.numbered();
                    }
                }
            }
        }
    }

    /// A batch of inputs is done: readies the acknowledgements now due, hands the frames over,
    /// and, while the kernel stops, says once everything handed over is written.
    pub(super) fn end_batch(&mut self, flushing: &mut Option<tokio::sync::oneshot::Sender<()>>) {
        let now = Instant::now();
        self.confirm(now);
        self.flush(now);
        // What this batch applied without causing any output is confirmed already: readied now,
        // its acknowledgement rides with the next frames.
        self.confirm(now);
        if flushing.is_some() {
            self.ack_now();
            self.flush(now);
            if self.frontends.values().all(|f| f.waiting() == 0) && !self.engine.parting() {
                let _ = flushing.take().map(|done| done.send(()));
            }
        }
    }

    /// Hands each frontend its pending frames as one batch, with its acknowledgement if one waits
    /// (or alone, once due), and files the acknowledgements of the frames applied since. A
    /// frontend past [`MAX_QUEUED`] is let go of instead.
    fn flush(&mut self, now: Instant) {
        self.batch += 1;
        let batch = self.batch;
        let mut after = Vec::new();
        let mut over = Vec::new();
        for (id, f) in &mut self.frontends {
            if let Some((seq, due)) = f.ack
                && (!f.pending.is_empty() || due <= now)
            {
                Downstream::Ack { seq }.encode(&mut f.pending);
                f.ack = None;
            }
            if f.pending.is_empty() {
                continue;
            }
            if f.waiting() > MAX_QUEUED {
                over.push(*id);
                continue;
            }
            let bytes = f.pending.split().freeze();
            f.feed.keep(bytes.clone(), now);
            f.progress.queued.fetch_add(bytes.len(), Ordering::AcqRel);
            // A writer that is gone has a detach on its way.
            let _ = f.outbox.send((batch, bytes));
            after.push((*id, batch));
        }
        // Frontends that are away: what they are sent is kept for their replay.
        for d in self.detached.values_mut() {
            if !d.pending.is_empty() {
                d.feed.keep(d.pending.split().freeze(), now);
            }
        }
        for (id, f) in &mut self.frontends {
            if let Some(seq) = f.applied.take() {
                self.unconfirmed.record(*id, seq, &after);
            }
        }
        if let Some(entry) = self.entries_applied.take() {
            self.entries_unwritten.record(0, entry, &after);
        }
        for id in over {
            self.let_go(id, "its queue passed the bound");
        }
    }

    /// Makes every held acknowledgement due now.
    pub(super) fn ack_now(&mut self) {
        let now = Instant::now();
        for f in self.frontends.values_mut() {
            if let Some((_, due)) = &mut f.ack {
                *due = now;
            }
        }
    }

    /// Readies, in order, the acknowledgement of every frame whose effects have been written
    /// everywhere, and tells the engine of the events from elsewhere whose effects have been;
    /// [`flush`](Self::flush) sends the acknowledgements.
    fn confirm(&mut self, now: Instant) {
        let frontends = &mut self.frontends;
        let written = |id| {
            frontends
                .get(&id)
                .map(|f: &Frontend| f.progress.written.load(Ordering::Acquire))
        };
        let mut acks = Vec::new();
        self.unconfirmed
            .confirm(written, |frontend, seq| acks.push((frontend, seq)));
        let engine = &mut self.engine;
        self.entries_unwritten
            .confirm(written, |_, entry| engine.written(entry));
        for (frontend, seq) in acks {
            if let Some(f) = frontends.get_mut(&frontend) {
                let due = f.ack.map_or(now + ACK_DELAY, |(_, due)| due);
                f.ack = Some((seq, due));
            }
        }
    }
}
