//! What waits for what in the hub, so that every frame is applied in an order that loses nothing:
//!
//! - after a start, every input waits until the engine is ready (a cluster member has joined),
//!   and then every frame until each frontend the supervisor expects has said hello (or
//!   [`RESTORE_WINDOW`] has passed): a frame applied before a frontend's hello would never reach
//!   that frontend's users ([`Restoring`]);
//! - the hello of a frontend whose previous connection has not ended yet (a process that died a
//!   moment ago), and what follows it, wait until that connection's last frames are applied
//!   ([`Hub::hold`], [`Hub::unhold`]).

use std::collections::{HashSet, VecDeque};

use tokio::time::Instant;

use super::{Hub, Input, RESTORE_WINDOW};
use crate::chat::FrontendId;
use crate::cluster::link::Incoming;

/// Inputs held until the engine is ready, and frames until every expected frontend is back.
pub(super) struct Restoring {
    expect: HashSet<String>,
    /// Every frontend expected is back, or the window is over.
    done: bool,
    /// Held until every expected frontend is back.
    held: VecDeque<Input>,
    /// Held until the engine is ready.
    unready: VecDeque<Input>,
    until: Instant,
}

impl Restoring {
    /// Expecting the hellos of the frontends named `expect`.
    pub(super) fn new(expect: Vec<String>) -> Self {
        Self {
            done: expect.is_empty(),
            expect: expect.into_iter().collect(),
            held: VecDeque::new(),
            unready: VecDeque::new(),
            until: Instant::now() + RESTORE_WINDOW,
        }
    }

    /// When the window ends, while it runs (it runs once the engine is ready).
    pub(super) fn window(&self, ready: bool) -> Option<Instant> {
        (!self.done && ready).then_some(self.until)
    }

    pub(super) fn window_over(&mut self) {
        tracing::warn!(missing = ?self.expect, "restore window over without every frontend's hello");
        self.done = true;
    }

    /// Applies `input` to `hub`, or holds it until it may be.
    pub(super) fn route(&mut self, input: Input, hub: &mut Hub) {
        match input {
            // Events from elsewhere wait for the frontends' hellos, like their frames: what one
            // causes for a frontend not attached yet would go nowhere.
            Input::Cluster(incoming @ Incoming::Entries { .. }) if !self.done => {
                self.take(Input::Cluster(incoming), hub)
            }
            Input::Cluster(incoming) => {
                let was_ready = hub.engine.ready();
                hub.incoming(incoming);
                if !was_ready && hub.engine.ready() {
                    // The hellos are counted from now.
                    self.until = Instant::now() + RESTORE_WINDOW;
                }
                if hub.engine.ready() {
                    for held in std::mem::take(&mut self.unready) {
                        self.ready(held, hub);
                    }
                }
            }
            input if !hub.engine.ready() => self.unready.push_back(input),
            input => self.ready(input, hub),
        }
        self.apply_held(hub);
    }

    /// Applies, once the engine is ready, what nothing else holds back.
    fn ready(&mut self, input: Input, hub: &mut Hub) {
        if self.done {
            hub.handle(input);
        } else {
            self.take(input, hub);
        }
    }

    /// Applies a hello at once and holds anything else, until nobody is missing.
    fn take(&mut self, input: Input, hub: &mut Hub) {
        match input {
            Input::Attach { ref name, .. } => {
                self.expect.remove(name);
                hub.handle(input);
            }
            other => self.held.push_back(other),
        }
        self.done = self.expect.is_empty();
    }

    /// Once nobody is missing, applies what was held, first.
    pub(super) fn apply_held(&mut self, hub: &mut Hub) {
        if self.done {
            for held in self.held.drain(..) {
                hub.handle(held);
            }
        }
    }
}

impl Hub {
    /// Holds what a frontend sends while its previous connection (a process that died a moment
    /// ago, say) has not ended: the frames still unread on that connection come first. Returns
    /// `input` unless it was held. The previous connection's end lets them go on (see
    /// [`Hub::unhold`]).
    pub(super) fn hold(&mut self, input: Input) -> Option<Input> {
        match &input {
            Input::Attach { frontend, name, .. } if self.frontends.values().any(|f| &f.name == name) => {
                tracing::info!(frontend = %name, "its previous connection has not ended yet: waiting for it");
                self.holding.insert(*frontend);
            }
            Input::Frame { frontend, .. } | Input::Detach { frontend, .. } if self.holding.contains(frontend) => {}
            _ => return Some(input),
        }
        self.held.push_back(input);
        None
    }

    /// Applies what was held for the frontends named `name`, in order.
    pub(super) fn unhold(&mut self, name: &str) {
        let ids: HashSet<FrontendId> = self
            .held
            .iter()
            .filter_map(|input| match input {
                Input::Attach { frontend, name: n, .. } if n == name => Some(*frontend),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        self.holding.retain(|id| !ids.contains(id));
        let (mine, others): (VecDeque<Input>, VecDeque<Input>) = self.held.drain(..).partition(|input| match input {
            Input::Attach { frontend, .. } | Input::Frame { frontend, .. } | Input::Detach { frontend, .. } => {
                ids.contains(frontend)
            }
            _ => false,
        });
        self.held = others;
        for input in mine {
            self.handle(input);
        }
    }
}
