//! What the supervisor keeps for a server's clients across its processes, and across its handles
//! (a reload that changes the server passes it from the old handle to the new one): the
//! connections they parked (see [`parked`]) and the server's position file. Each
//! new process of the server is sent both over its handoff socket, and adopts them.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::parked::{self, Parked};
use crate::config::Server;
use crate::handoff::Message;
use crate::handoff::socket::Channel;

/// A server's parked connections and position file (the kernel's is empty).
#[derive(Clone, Default)]
pub struct Custody {
    parked: Arc<Mutex<Parked>>,
    /// The position file (see [`crate::journal`]).
    position_file: Option<Arc<OwnedFd>>,
}

impl Custody {
    /// Nothing parked, and a new position file with a slot per connection `server` may hold.
    pub fn for_server(server: &Server) -> Self {
        let name = &server.settings.name;
        let slots = server.settings.limits.max_connections.min(u32::MAX as usize - 1) as u32;
        let position_file = crate::journal::PositionFile::create(name, slots)
            .map_err(|e| tracing::warn!(name = %name, error = %e, "no position file: a restart may lose lines"))
            .ok()
            .map(Arc::new);
        Self {
            parked: Arc::default(),
            position_file,
        }
    }

    /// Applies a packet of the frontend's handoff socket (a park, a release, its carry).
    pub fn apply(&self, name: &str, message: Message, fds: Vec<OwnedFd>) {
        if !self.parked.lock().apply(message, fds) {
            tracing::warn!(name = %name, "unexpected handoff message from the frontend");
        }
    }

    /// Closes every parked connection: nobody will adopt them.
    pub fn close_parked(&self, name: &str) {
        let closed = self.parked.lock().clear();
        if closed > 0 {
            tracing::info!(name = %name, closed, "closed the connections its clients had parked");
        }
    }

    /// Serves the handoff socket of a new process (`pid`, our end `fd`): sends it the position
    /// file and every parked connection, on a task of its own (a large adoption waits for the
    /// process to read it). Returns the socket, whose packets the caller reads; `None` without one
    /// or without a position file.
    pub fn serve_handoff_socket(&self, name: &str, fd: OwnedFd, pid: u32) -> Option<Arc<Channel>> {
        let channel = match Channel::of_child(fd, pid) {
            Ok(channel) => Arc::new(channel),
            Err(e) => {
                tracing::warn!(name = %name, error = %e, "cannot serve the handoff socket");
                return None;
            }
        };
        let (name, parked) = (name.to_string(), self.parked.clone());
        let position_file = self.position_file.clone()?;
        let sending = channel.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            match parked::send_for_adoption(sending, position_file, parked).await {
                Ok(0) => {}
                Ok(clients) => {
                    tracing::info!(name = %name, clients, took = ?started.elapsed(), "handed its parked clients to the new process")
                }
                Err(e) => tracing::warn!(name = %name, error = %e, "could not hand the parked clients over"),
            }
        });
        Some(channel)
    }
}
