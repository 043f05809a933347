//! What the hub applies the frontends' frames to: an [`Engine`]. The kernel's own chat is
//! [`Local`]; with `[cluster]` it is this host's member of the cluster
//! ([`Clustered`](super::cluster::Clustered)). The hub's loop is the same for both: it hands the
//! engine what the frontends say, and encodes what the engine says back ([`Effects`]).

use std::collections::HashSet;

use crate::chat::{Chat, FrontendId, Login, Now, Output, SessionId, SessionKey};
use crate::cluster::link::Incoming;
/// Outputs, each batch stamped with the origin of the input that caused it (none: the kernel's
/// own doing).
pub use crate::cluster::member::Emitted;
use crate::wire::{Origin, Upstream};

/// What an engine's step caused. The hub keeps one and clears it after each step, so that a
/// frame costs no allocation of its own here.
#[derive(Default)]
pub struct Effects {
    /// Every output, in order.
    outputs: Vec<Output>,
    /// Where the outputs of each origin end in `outputs` (none: the kernel's own doing).
    batches: Vec<(Option<Origin>, usize)>,
    /// Frames it finished: every frame of that frontend up to this number, acknowledged once
    /// what they caused is written.
    pub done: Vec<(FrontendId, u64)>,
}

impl Effects {
    /// Records the outputs `cause` pushes as caused by `origin`.
    pub fn caused(&mut self, origin: Option<Origin>, cause: impl FnOnce(&mut Vec<Output>)) {
        cause(&mut self.outputs);
        self.end(origin);
    }

    /// Records what a cluster member emitted, batch by batch.
    pub fn extend(&mut self, emitted: Emitted) {
        for (origin, outputs) in emitted {
            self.outputs.extend(outputs);
            self.end(origin);
        }
    }

    fn end(&mut self, origin: Option<Origin>) {
        let end = self.outputs.len();
        if self.batches.last().map_or(0, |(_, last)| *last) < end {
            self.batches.push((origin, end));
        }
    }

    /// Each origin with what it caused, in order.
    pub fn batches(&self) -> impl Iterator<Item = (Option<Origin>, &[Output])> {
        let starts = std::iter::once(0).chain(self.batches.iter().map(|(_, end)| *end));
        self.batches
            .iter()
            .zip(starts)
            .map(|((origin, end), start)| (*origin, &self.outputs[start..*end]))
    }

    /// Takes out the outputs `which` picks (rarely: a returning frontend's logins), in order.
    pub fn take(&mut self, which: impl Fn(&Output) -> bool) -> Vec<Output> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.outputs.len());
        let mut batches = Vec::with_capacity(self.batches.len());
        let mut outputs = std::mem::take(&mut self.outputs).into_iter();
        let mut start = 0;
        for (origin, end) in std::mem::take(&mut self.batches) {
            for output in outputs.by_ref().take(end - start) {
                if which(&output) {
                    taken.push(output);
                } else {
                    kept.push(output);
                }
            }
            start = end;
            if batches.last().map_or(0, |(_, last)| *last) < kept.len() {
                batches.push((origin, kept.len()));
            }
        }
        (self.outputs, self.batches) = (kept, batches);
        taken
    }

    /// Ready for the next step; what was allocated is kept.
    pub fn clear(&mut self) {
        self.outputs.clear();
        self.batches.clear();
        self.done.clear();
    }
}

/// Where a frame is from: its frontend's connection, the frame's number, and that frontend's
/// process.
#[derive(Debug, Clone, Copy)]
pub struct From {
    pub frontend: FrontendId,
    pub seq: u64,
    pub instance: u64,
}

impl From {
    /// The origin stamped on what the frame causes.
    pub fn origin(&self) -> Origin {
        Origin {
            instance: self.instance,
            seq: self.seq,
        }
    }
}

/// What the hub kept of a frontend that says hello.
pub enum Back {
    /// It was let go of, or its process died: its sessions waited for it, under its previous
    /// connection's id.
    Away(FrontendId),
    /// It came back too late: these sessions were logged out meanwhile, and are told so.
    TooLate(HashSet<SessionId>),
    /// Nothing: a first start, or a restarted kernel.
    New,
}

/// What the hub applies the frontends' frames to.
pub trait Engine: Send {
    /// Whether it can apply frames yet (a cluster member: once it has joined and read who is
    /// logged in). Until then the hub holds every input but [`Input::Cluster`](super::Input).
    fn ready(&self) -> bool;

    /// The chat as this kernel knows it (a cluster member: its replica of everyone's).
    fn chat(&self) -> &Chat;

    /// Frontend `frontend` (server `name`) said hello listing `sessions`; `back`: what was kept
    /// of it.
    fn attach(
        &mut self,
        frontend: FrontendId,
        name: &str,
        sessions: Vec<(SessionId, Option<Login>)>,
        back: Back,
        fx: &mut Effects,
    );

    /// A frame of a frontend, at `now`.
    fn frame(&mut self, from: From, message: Upstream, now: Now<'_>, fx: &mut Effects);

    /// A frontend is gone for good: its users are logged out.
    fn gone(&mut self, frontend: FrontendId, fx: &mut Effects);

    /// What the engine's own link brought back (a cluster member's Redis).
    fn incoming(&mut self, incoming: Incoming, fx: &mut Effects);

    /// The newest event it applied from elsewhere (a cluster's stream entry, by number), whose
    /// outputs the hub tells it of once written ([`written`](Self::written)).
    fn applied(&self) -> Option<u64>;

    /// What event `entry` caused is written to every frontend.
    fn written(&mut self, entry: u64);

    /// The kernel stops: leave whatever the engine is part of.
    fn part(&mut self, fx: &mut Effects);

    /// Whether it is still leaving (the kernel's stop waits for it).
    fn parting(&self) -> bool;

    /// Users on each other node, by node name.
    fn nodes(&self) -> Vec<(String, u64)>;
}

/// The kernel's own chat: every frame applied at once, in arrival order.
#[derive(Default)]
pub struct Local {
    chat: Chat,
}

impl Engine for Local {
    fn ready(&self) -> bool {
        true
    }

    fn chat(&self) -> &Chat {
        &self.chat
    }

    fn attach(
        &mut self,
        frontend: FrontendId,
        _name: &str,
        sessions: Vec<(SessionId, Option<Login>)>,
        back: Back,
        fx: &mut Effects,
    ) {
        fx.caused(None, |out| match back {
            Back::Away(before) => self.chat.reattach(before, frontend, sessions, out),
            Back::TooLate(gone) => self.chat.restore_after_logout(frontend, sessions, &gone, out),
            Back::New => self.chat.restore(frontend, sessions, out),
        });
    }

    fn frame(&mut self, from: From, message: Upstream, now: Now<'_>, fx: &mut Effects) {
        let key = |session| SessionKey {
            frontend: from.frontend,
            session,
        };
        let chat = &mut self.chat;
        fx.caused(Some(from.origin()), |out| match message {
            Upstream::Open { session } => {
                chat.open(key(session));
            }
            Upstream::Line { session, line } => {
                tracing::trace!(frontend = from.frontend, session, seq = from.seq, %line, "line");
                if !chat.input(key(session), &line, now, out) {
                    tracing::debug!(
                        frontend = from.frontend,
                        session,
                        "input for an unknown session ignored"
                    );
                }
            }
            Upstream::Closed { session } => chat.close(key(session), out),
            Upstream::Hello { .. } | Upstream::Census | Upstream::Heartbeat | Upstream::Bye => {
                unreachable!("the connection keeps these from the hub")
            }
        });
        fx.done.push((from.frontend, from.seq));
    }

    fn gone(&mut self, frontend: FrontendId, fx: &mut Effects) {
        fx.caused(None, |out| self.chat.frontend_gone(frontend, out));
    }

    /// Nothing comes back to the local chat: it has no link.
    fn incoming(&mut self, _incoming: Incoming, _fx: &mut Effects) {}

    fn applied(&self) -> Option<u64> {
        None
    }

    fn written(&mut self, _entry: u64) {}

    fn part(&mut self, _fx: &mut Effects) {}

    fn parting(&self) -> bool {
        false
    }

    fn nodes(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(frontend: FrontendId, session: SessionId) -> Output {
        Output::Close(SessionKey { frontend, session })
    }

    fn named(frontend: FrontendId, session: SessionId) -> Output {
        let key = SessionKey { frontend, session };
        Output::Named { key, login: None }
    }

    fn origin(seq: u64) -> Option<Origin> {
        Some(Origin { instance: 1, seq })
    }

    #[test]
    fn outputs_keep_their_origins_in_order_and_what_is_taken_leaves_the_rest_so() {
        let mut fx = Effects::default();
        fx.caused(origin(1), |out| out.extend([close(1, 1), named(2, 1)]));
        fx.caused(origin(2), |_| {}); // caused nothing: no batch
        fx.extend(vec![
            (None, vec![named(2, 2)]),
            (origin(3), vec![close(1, 3), named(1, 4)]),
        ]);
        let batches: Vec<_> = fx.batches().map(|(o, outs)| (o, outs.to_vec())).collect();
        assert_eq!(
            batches,
            [
                (origin(1), vec![close(1, 1), named(2, 1)]),
                (None, vec![named(2, 2)]),
                (origin(3), vec![close(1, 3), named(1, 4)]),
            ]
        );
        let taken = fx.take(|o| matches!(o, Output::Named { key, .. } if key.frontend == 2));
        assert_eq!(taken, [named(2, 1), named(2, 2)]);
        let rest: Vec<_> = fx.batches().map(|(o, outs)| (o, outs.to_vec())).collect();
        assert_eq!(
            rest,
            [
                (origin(1), vec![close(1, 1)]),
                (origin(3), vec![close(1, 3), named(1, 4)])
            ],
            "a batch left empty is gone"
        );
        fx.clear();
        assert_eq!(fx.batches().count(), 0);
    }
}
