//! The hub of a cluster member (see [`crate::cluster`]): what the frontends send goes to the
//! [`Member`], whose requests go to Redis through the [`Link`], and whose outputs (answers, and
//! the stream's events) are encoded here like the embedded kernel's, each with its origin. A
//! frame is acknowledged once the member says it is done (its script ran, or its answer is out).

use super::*;
use crate::cluster::link::{Incoming, Link};
use crate::cluster::member::{Emitted, Member};

/// A member and its link to Redis.
pub struct Clustered {
    pub member: Member,
    pub link: Link,
}

/// Where a frame is from: its frontend's connection, the frame's number, and that frontend's
/// process.
pub(super) struct From {
    pub frontend: FrontendId,
    pub seq: u64,
    pub instance: u64,
}

impl Hub {
    fn member(&mut self) -> &mut Member {
        &mut self.cluster.as_mut().expect("a cluster member").member
    }

    /// Encodes what the member caused, each batch with its origin; sends its requests, and where
    /// to read the stream from; readies the acknowledgements of the frames it finished.
    pub(super) fn emit(&mut self, emitted: Emitted) {
        for (origin, outputs) in emitted {
            if outputs.is_empty() {
                continue;
            }
            self.origin = origin;
            self.out = outputs;
            self.encode();
        }
        self.origin = None;
        let Some(clustered) = self.cluster.as_mut() else { return };
        for request in clustered.member.take_requests() {
            clustered.link.send(request);
        }
        clustered.link.read_from(clustered.member.reading());
        clustered.link.joined(clustered.member.epoch());
        for (frontend, upto) in clustered.member.take_done() {
            if let Some(f) = self.frontends.get_mut(&frontend) {
                f.applied = Some(upto);
                f.last_applied = upto;
            }
        }
    }

    /// A local frontend said hello (see [`Member::attach`]); `logged_out`: its sessions logged out
    /// while it was away too long, who are told so.
    pub(super) fn cluster_attach(
        &mut self,
        frontend: FrontendId,
        name: &str,
        mut sessions: Vec<(SessionId, Option<Login>)>,
        logged_out: Option<HashSet<SessionId>>,
    ) {
        let mut emitted = Emitted::new();
        if let Some(gone) = logged_out {
            let mut told = Vec::new();
            for (session, login) in &mut sessions {
                if gone.contains(session)
                    && let Some(login) = login.take()
                {
                    let key = SessionKey {
                        frontend,
                        session: *session,
                    };
                    told.push(Output::Named { key, login: None });
                    told.push(Output::Deliver {
                        event: crate::chat::Event::Logout { name: login.name },
                        to: vec![(frontend, vec![*session])],
                    });
                }
            }
            emitted.push((None, told));
        }
        self.member().attach(frontend, name, sessions, &mut emitted);
        self.emit(emitted);
    }

    /// A frame of a local frontend.
    pub(super) fn cluster_frame(&mut self, from: From, message: Upstream) {
        let frame = (from.frontend, from.seq);
        let key = |session| SessionKey {
            frontend: from.frontend,
            session,
        };
        let now = self.clock.now();
        let time = now.time.to_string();
        let mut emitted = Emitted::new();
        let member = self.member();
        member.arrived(from.frontend, from.seq);
        match message {
            Upstream::Open { session } => member.open(key(session), frame),
            Upstream::Line { session, line } => {
                member.line(key(session), frame, from.instance, &line, &time, &mut emitted)
            }
            Upstream::Closed { session } => member.closed(key(session), frame, &mut emitted),
            Upstream::Hello { .. } | Upstream::Census | Upstream::Heartbeat | Upstream::Bye => {
                unreachable!("the connection keeps these from the hub")
            }
        }
        self.emit(emitted);
    }

    /// A local frontend is gone for good: its users are logged out (for everyone, through
    /// Redis, when this kernel is a cluster member).
    pub(super) fn frontend_gone(&mut self, frontend: FrontendId) {
        if self.cluster.is_none() {
            self.chat.frontend_gone(frontend, &mut self.out);
            return;
        }
        self.member().frontend_gone(frontend);
        self.emit(Emitted::new());
    }

    /// What the link brought back.
    pub(super) fn cluster_incoming(&mut self, incoming: Incoming) {
        let mut emitted = Emitted::new();
        let member = self.member();
        let was_ready = member.ready();
        match incoming {
            Incoming::Answer { id, reply } => member.answered(id, reply, std::time::Instant::now(), &mut emitted),
            Incoming::Entries { generation, entries } => member.entries(generation, entries, &mut emitted),
            Incoming::Tick => {
                member.tick(std::time::Instant::now(), &mut emitted);
                if let Some(note) = member.note.take() {
                    tracing::warn!("cluster: {note}");
                }
            }
        }
        if !was_ready && member.ready() {
            tracing::info!("joined the cluster");
        }
        let applied = member.applied().number();
        if applied > 0 {
            self.entries_applied = Some(applied);
        }
        self.emit(emitted);
    }

    /// The kernel stops: see [`Member::part`].
    pub(super) fn cluster_part(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.member.part();
            self.emit(Emitted::new());
        }
    }

    pub(super) fn cluster_parting(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.member.parting())
    }

    /// Users per node, as census entries named `@NODE`.
    pub(super) fn cluster_census(&self) -> Vec<(String, u64)> {
        self.cluster.as_ref().map_or_else(Vec::new, |c| {
            c.member
                .census()
                .into_iter()
                .map(|(node, users)| (format!("@{node}"), users))
                .collect()
        })
    }
}
