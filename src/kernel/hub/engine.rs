//! What the hub applies the frontends' frames to: an [`Engine`]. The kernel's own chat is
//! [`Local`]; with `[cluster]` it is this host's member of the cluster
//! ([`Clustered`](super::cluster::Clustered)). The hub's loop is the same for both: it hands the
//! engine what the frontends say, and encodes what the engine says back ([`Effects`]).

use std::collections::HashSet;

use crate::chat::{Chat, FrontendId, Login, Now, SessionId, SessionKey};
use crate::cluster::link::Incoming;
/// Outputs, each batch stamped with the origin of the input that caused it (none: the kernel's
/// own doing).
pub use crate::cluster::member::Emitted;
use crate::wire::{Origin, Upstream};

/// What an engine's step caused.
#[derive(Default)]
pub struct Effects {
    pub outputs: Emitted,
    /// Frames it finished: every frame of that frontend up to this number, acknowledged once
    /// what they caused is written.
    pub done: Vec<(FrontendId, u64)>,
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
        let mut out = Vec::new();
        match back {
            Back::Away(before) => self.chat.reattach(before, frontend, sessions, &mut out),
            Back::TooLate(gone) => self.chat.restore_after_logout(frontend, sessions, &gone, &mut out),
            Back::New => self.chat.restore(frontend, sessions, &mut out),
        }
        fx.outputs.push((None, out));
    }

    fn frame(&mut self, from: From, message: Upstream, now: Now<'_>, fx: &mut Effects) {
        let key = |session| SessionKey {
            frontend: from.frontend,
            session,
        };
        let mut out = Vec::new();
        match message {
            Upstream::Open { session } => {
                self.chat.open(key(session));
            }
            Upstream::Line { session, line } => {
                tracing::trace!(frontend = from.frontend, session, seq = from.seq, %line, "line");
                if !self.chat.input(key(session), &line, now, &mut out) {
                    tracing::debug!(
                        frontend = from.frontend,
                        session,
                        "input for an unknown session ignored"
                    );
                }
            }
            Upstream::Closed { session } => self.chat.close(key(session), &mut out),
            Upstream::Hello { .. } | Upstream::Census | Upstream::Heartbeat | Upstream::Bye => {
                unreachable!("the connection keeps these from the hub")
            }
        }
        fx.outputs.push((Some(from.origin()), out));
        fx.done.push((from.frontend, from.seq));
    }

    fn gone(&mut self, frontend: FrontendId, fx: &mut Effects) {
        let mut out = Vec::new();
        self.chat.frontend_gone(frontend, &mut out);
        fx.outputs.push((None, out));
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
