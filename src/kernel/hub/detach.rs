//! Frontends the hub lets go of: one that stopped reading (past [`HIGH_WATER`] and taking nothing
//! for [`STALL`], or past [`MAX_QUEUED`]) or went silent. Its connection is closed and its
//! sessions wait [`GRACE`] for its hello; if it does not come back, its users are logged out once,
//! and remembered, so that if it comes back later they are told so rather than restored.

use super::*;

/// A frontend let go of, whose sessions wait for its hello until `until`.
pub(super) struct Detached {
    pub(super) name: String,
    pub(super) until: Instant,
    /// What it is sent meanwhile, numbered and kept for its next process's replay.
    pub(super) feed: Feed,
    /// Frames encoded for it since the last flush (kept, never written).
    pub(super) pending: BytesMut,
    /// The last of its frames applied.
    pub(super) last_applied: u64,
}

/// The sessions of a frontend that did not come back in time, logged out for everyone: if it
/// comes back after all, they are told so rather than restored.
pub(super) struct LoggedOut {
    pub(super) sessions: HashSet<SessionId>,
    pub(super) until: Instant,
}

/// How long the sessions of a frontend that did not come back are remembered.
const REMEMBER: Duration = Duration::from_secs(600);

impl Hub {
    /// Keeps a frontend's sessions for [`GRACE`], waiting for its hello.
    pub(super) fn detach(&mut self, id: FrontendId, mut f: Frontend) {
        f.progress.let_go.cancel();
        self.stalls.remove(&id);
        // What was never handed to its writer is kept for the replay like the rest.
        let now = Instant::now();
        if !f.pending.is_empty() {
            f.feed.keep(f.pending.split().freeze(), now);
        }
        self.detached.insert(
            id,
            Detached {
                name: f.name,
                until: now + GRACE,
                feed: f.feed,
                pending: BytesMut::new(),
                last_applied: f.last_applied,
            },
        );
    }

    /// Lets a frontend go: its connection closes and its sessions wait for its hello.
    pub(super) fn let_go(&mut self, id: FrontendId, why: &str) {
        if let Some(f) = self.frontends.remove(&id) {
            tracing::warn!(frontend = %f.name, id, waiting = f.waiting(), "letting go of a frontend: {why}; its sessions wait {GRACE:?} for it");
            let name = f.name.clone();
            self.detach(id, f);
            // A hello from its next process may be waiting for this connection to end.
            self.unhold(&name);
        }
    }

    /// Logs out the users of frontends that did not come back in time.
    pub(super) fn expire(&mut self, now: Instant) {
        for f in self.frontends.values_mut() {
            f.feed.expire(now);
        }
        for d in self.detached.values_mut() {
            d.feed.expire(now);
        }
        let expired: Vec<FrontendId> = self
            .detached
            .iter()
            .filter(|(_, d)| d.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let d = self.detached.remove(&id).expect("listed above");
            tracing::warn!(frontend = %d.name, id, "frontend did not come back; logging out its users");
            let sessions = self.engine.chat().sessions_on(id).into_iter().collect();
            self.logged_out.insert(
                d.name,
                LoggedOut {
                    sessions,
                    until: now + REMEMBER,
                },
            );
            self.frontend_gone(id);
        }
    }

    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let kept = self.frontends.values().filter_map(|f| f.feed.expiry());
        let detached = self
            .detached
            .values()
            .flat_map(|d| [Some(d.until), d.feed.expiry()])
            .flatten();
        kept.chain(detached).min()
    }

    pub(super) fn any_behind(&self) -> bool {
        self.frontends.values().any(Frontend::behind)
    }

    /// If some frontend is past [`HIGH_WATER`], when the first of them will have taken nothing
    /// for [`STALL`] (the hub takes no input until then, or until they catch up).
    pub(super) fn stalled_by(&mut self, now: Instant) -> Option<Instant> {
        let mut first: Option<Instant> = None;
        for (id, f) in &self.frontends {
            if !f.behind() {
                self.stalls.remove(id);
                continue;
            }
            let written = f.progress.written.load(Ordering::Acquire);
            let (seen, since) = self.stalls.entry(*id).or_insert((written, now));
            if *seen != written {
                (*seen, *since) = (written, now);
            }
            let at = *since + STALL;
            first = Some(first.map_or(at, |f| f.min(at)));
        }
        first
    }

    pub(super) fn let_go_of_stalled(&mut self, now: Instant) {
        let stalled: Vec<FrontendId> = self
            .stalls
            .iter()
            .filter(|(_, (_, since))| *since + STALL <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in stalled {
            self.let_go(id, "it took nothing while its queue was full");
        }
    }
}
