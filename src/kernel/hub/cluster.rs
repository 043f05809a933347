//! The hub's engine when the kernel is its host's member of a cluster (see [`crate::cluster`]):
//! what the frontends send goes to the [`Member`], whose requests go to Redis through the
//! [`Link`], and whose outputs (answers, and the stream's events) the hub encodes like the local
//! chat's, each with its origin. A frame is done once the member says so (its script ran, or its
//! answer is out).

use std::time::Instant;

use super::engine::{Back, Effects, Emitted, Engine, From};
use crate::chat::{Chat, Event, FrontendId, Login, Now, Output, SessionId, SessionKey};
use crate::cluster::entry::Id;
use crate::cluster::link::{Incoming, Link};
use crate::cluster::member::Member;
use crate::wire::Upstream;

/// A member and its link to Redis.
pub struct Clustered {
    member: Member,
    link: Link,
}

impl Clustered {
    /// A member that starts by joining the cluster.
    pub fn new(member: Member, link: Link) -> Self {
        let mut clustered = Self { member, link };
        clustered.settle(Emitted::new(), &mut Effects::default());
        clustered
    }

    /// Passes on what the member caused and the frames it finished; sends its requests, where to
    /// read the stream from and the epoch it joined.
    fn settle(&mut self, emitted: Emitted, fx: &mut Effects) {
        fx.extend(emitted);
        for request in self.member.take_requests() {
            self.link.send(request);
        }
        self.link.read_from(self.member.reading());
        self.link.joined(self.member.epoch());
        fx.done.extend(self.member.take_done());
    }
}

impl Engine for Clustered {
    fn ready(&self) -> bool {
        self.member.ready()
    }

    fn chat(&self) -> &Chat {
        &self.member.chat
    }

    /// See [`Member::attach`]; sessions logged out while their frontend was away too long are
    /// told so.
    fn attach(
        &mut self,
        frontend: FrontendId,
        name: &str,
        mut sessions: Vec<(SessionId, Option<Login>)>,
        back: Back,
        fx: &mut Effects,
    ) {
        let mut emitted = Emitted::new();
        if let Back::TooLate(gone) = back {
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
                        event: Event::Logout { name: login.name },
                        to: vec![(frontend, vec![*session])],
                    });
                }
            }
            emitted.push((None, told));
        }
        self.member.attach(frontend, name, sessions, &mut emitted);
        self.settle(emitted, fx);
    }

    fn frame(&mut self, from: From, message: Upstream, now: Now<'_>, fx: &mut Effects) {
        let frame = (from.frontend, from.seq);
        let key = |session| SessionKey {
            frontend: from.frontend,
            session,
        };
        let time = now.time.to_string();
        let mut emitted = Emitted::new();
        let member = &mut self.member;
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
        self.settle(emitted, fx);
    }

    /// Its users are logged out for everyone, through Redis.
    fn gone(&mut self, frontend: FrontendId, fx: &mut Effects) {
        self.member.frontend_gone(frontend);
        self.settle(Emitted::new(), fx);
    }

    fn incoming(&mut self, incoming: Incoming, fx: &mut Effects) {
        let mut emitted = Emitted::new();
        let member = &mut self.member;
        let was_ready = member.ready();
        match incoming {
            Incoming::Answer { id, reply } => member.answered(id, reply, Instant::now(), &mut emitted),
            Incoming::Entries { generation, entries } => member.entries(generation, entries, &mut emitted),
            Incoming::Tick => {
                member.tick(Instant::now(), &mut emitted);
                if let Some(note) = member.note.take() {
                    tracing::warn!("cluster: {note}");
                }
            }
        }
        if !was_ready && member.ready() {
            tracing::info!("joined the cluster");
        }
        self.settle(emitted, fx);
    }

    fn applied(&self) -> Option<u64> {
        let applied = self.member.applied().number();
        (applied > 0).then_some(applied)
    }

    fn written(&mut self, entry: u64) {
        self.member.written(Id::from_number(entry));
    }

    /// See [`Member::part`].
    fn part(&mut self, fx: &mut Effects) {
        self.member.part();
        self.settle(Emitted::new(), fx);
    }

    fn parting(&self) -> bool {
        self.member.parting()
    }

    fn nodes(&self) -> Vec<(String, u64)> {
        self.member.census().into_iter().collect()
    }
}
