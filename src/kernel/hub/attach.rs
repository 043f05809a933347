//! A frontend saying hello: a new one is numbered from the start; one that comes back (its
//! previous connection let go of, or its previous process dead) gets again, first, what that one
//! had not handled, if the hub still keeps it (see [`feed`](super::feed)).

use tokio::time::Instant;

use super::engine::{Back, Effects};
use super::feed::{self, Feed, Replay};
use super::{Frontend, Hub};
use crate::chat::{FrontendId, Login, Output, SessionId};
use crate::wire::Downstream;

impl Hub {
    /// Frontend `frontend`, `f`, said hello listing `sessions`; `resume`: where it (or the process
    /// before it) left off.
    pub(super) fn attach(
        &mut self,
        frontend: FrontendId,
        f: Frontend,
        sessions: Vec<(SessionId, Option<Login>)>,
        resume: Option<(u64, u64)>,
    ) {
        let name = f.name.clone();
        let before: Vec<FrontendId> = self
            .detached
            .iter()
            .filter(|(_, d)| d.name == name)
            .map(|(id, _)| *id)
            .collect();
        self.frontends.insert(frontend, f);
        let mut fx = std::mem::take(&mut self.fx);
        match before.split_last() {
            Some((&old, older)) => {
                for id in older {
                    self.detached.remove(id);
                    self.frontend_gone(*id);
                }
                let mut away = self.detached.remove(&old).expect("listed above");
                if !away.pending.is_empty() {
                    away.feed.keep(away.pending.split().freeze(), Instant::now());
                }
                tracing::info!(frontend = %name, "frontend is back: its sessions carry on");
                self.engine.attach(frontend, &name, sessions, Back::Away(old), &mut fx);
                self.resume(frontend, away.feed, away.last_applied, resume, &mut fx);
            }
            None => {
                self.sync(frontend, 0);
                let now = Instant::now();
                self.logged_out.retain(|_, l| l.until > now);
                let back = match self.logged_out.remove(&name) {
                    Some(gone) => Back::TooLate(gone.sessions),
                    None => Back::New,
                };
                self.engine.attach(frontend, &name, sessions, back, &mut fx);
            }
        }
        self.emit(&mut fx);
        self.fx = fx;
    }

    /// Starts a new frontend's numbering: its frames from here on are numbered from its feed's
    /// next number.
    fn sync(&mut self, frontend: FrontendId, applied: u64) {
        let epoch = self.epoch;
        let f = self.frontends.get_mut(&frontend).expect("attached");
        Downstream::Sync {
            epoch,
            next: f.feed.next(),
            applied,
        }
        .encode(&mut f.pending);
    }

    /// A frontend came back with `feed`, what it was sent while away: if its hello says where it
    /// (or its previous process) left off, and that is still kept, it gets what it has not handled
    /// first; before that, the logins of its sessions among `outputs` (its new process does not
    /// know them yet), and the rest numbered as usual.
    fn resume(&mut self, frontend: FrontendId, feed: Feed, applied: u64, resume: Option<(u64, u64)>, fx: &mut Effects) {
        let replay = feed::replay(&feed, self.epoch, resume);
        let epoch = self.epoch;
        let f = self.frontends.get_mut(&frontend).expect("attached");
        f.feed = feed;
        match replay {
            Replay::From { after, frames } => {
                // The logins first, unnumbered: the replay is for sessions as they are now.
                let logins = fx.take(|output| matches!(output, Output::Named { key, .. } if key.frontend == frontend));
                for output in logins {
                    if let Output::Named { key, login } = output {
                        Downstream::Named {
                            session: key.session,
                            login,
                        }
                        .encode(&mut f.pending);
                    }
                }
                Downstream::Sync {
                    epoch,
                    next: after + 1,
                    applied,
                }
                .encode(&mut f.pending);
                tracing::info!(frontend = %f.name, from = after + 1, to = f.feed.next(), bytes = frames.len(), "sending again what its last process did not handle");
                f.pending.extend_from_slice(&frames);
                // What is pending is not numbered anew (the replayed frames have their numbers):
                // hand it over now, kept out of the feed.
                let bytes = f.pending.split().freeze();
                f.progress
                    .queued
                    .fetch_add(bytes.len(), std::sync::atomic::Ordering::AcqRel);
                let _ = f.outbox.send((self.batch, bytes));
            }
            Replay::Gone { after } => {
                tracing::warn!(frontend = %f.name, after, next = f.feed.next(), "cannot send again what its last process did not handle: no longer kept");
                self.sync(frontend, applied);
            }
            Replay::Fresh => self.sync(frontend, applied),
        }
    }
}
