//! One supervised child (the kernel or a frontend): what it is ([`Spec`]), what `status` shows of
//! it, and the supervisor's [`Handle`] on the task (`task`) that carries out its lifecycle.

mod task;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use super::custody::Custody;
use super::lifecycle::{Event, State};
use crate::config::{Restart, Server};

/// What a child is.
#[derive(Debug, Clone)]
pub enum Role {
    /// The kernel; after a restart it waits for the hellos of the servers named in `expect`
    /// (kept current by the supervisor as the config changes).
    Kernel {
        expect: Arc<Mutex<Vec<String>>>,
        /// Its host's part in a cluster, if `[cluster]` (fixed for the life of `up`).
        member: Option<crate::kernel::Membership>,
    },
    /// A frontend serving `server` on the supervisor's `listener`.
    Frontend { server: Server, listener: Arc<TcpListener> },
}

/// Everything needed to start a child, again and again.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub role: Role,
    pub restart: Restart,
    pub kernel_socket: PathBuf,
    /// Where its `READY=1` and `WATCHDOG=1` arrive.
    pub notify_socket: PathBuf,
    /// Longest silence between two `WATCHDOG=1` before it is killed; `None`: no watchdog.
    pub watchdog: Option<Duration>,
    pub log_dir: PathBuf,
    pub log_keep: usize,
}

impl Spec {
    pub fn kind(&self) -> String {
        match &self.role {
            Role::Kernel { .. } => "kernel".into(),
            Role::Frontend { server, .. } => server.settings.kind.to_string(),
        }
    }

    pub fn address(&self) -> String {
        match &self.role {
            Role::Kernel { .. } => self.kernel_socket.display().to_string(),
            Role::Frontend { listener, server } => listener
                .local_addr()
                .map_or_else(|_| server.addr().to_string(), |a| a.to_string()),
        }
    }
}

/// What `status` shows of a child.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub pid: Option<u32>,
    /// When it last became ready (for uptime).
    pub since: Option<Instant>,
    /// Starts after the first.
    pub restarts: u32,
}

/// A request to a child's task: `start`, `stop`, `restart` or a hand-over to a successor
/// ([`Event::Start`], …). The reply, the state the child was in when the request came, is sent
/// once the request is carried out (the child is no longer stopping).
pub struct Ctl {
    pub request: Event,
    pub done: oneshot::Sender<State>,
}

/// The supervisor's handle on a child's task. Dropping it (its `ctl` sender) stops the child and
/// ends the task.
pub struct Handle {
    pub spec: Spec,
    ctl: mpsc::Sender<Ctl>,
    pub status: watch::Receiver<Status>,
    custody: Custody,
}

impl Handle {
    /// Starts the task, which starts the child.
    pub fn start(spec: Spec) -> Self {
        Self::start_with(spec, None)
    }

    /// Starts the task with the custody of an earlier handle of the same server (see
    /// [`Handle::hand_over_and_end`]), or afresh.
    pub fn start_with(spec: Spec, custody: Option<Custody>) -> Self {
        let (ctl, ctl_rx) = mpsc::channel(8);
        let (status_tx, status) = watch::channel(Status {
            state: State::Starting,
            pid: None,
            since: None,
            restarts: 0,
        });
        let custody = custody.unwrap_or_else(|| match &spec.role {
            Role::Frontend { server, .. } => Custody::for_server(server),
            Role::Kernel { .. } => Custody::default(),
        });
        tokio::spawn(task::supervise(spec.clone(), custody.clone(), ctl_rx, status_tx));
        Self {
            spec,
            ctl,
            status,
            custody,
        }
    }

    /// Sends `start`, `stop` or `restart`, waits for it to be carried out, and returns the state
    /// the child was in before.
    pub async fn request(&self, request: Event) -> State {
        let (done, wait) = oneshot::channel();
        let before = self.status.borrow().state;
        if self.ctl.send(Ctl { request, done }).await.is_err() {
            return before;
        }
        wait.await.unwrap_or(before)
    }

    /// Stops the child the way a restart does (it hands its clients over), ends the task, and
    /// returns the custody of its clients for the next handle of the server
    /// ([`Handle::start_with`]).
    pub async fn hand_over_and_end(self) -> Custody {
        self.request(Event::HandOver).await;
        let custody = self.custody.clone();
        self.stop_and_end().await;
        custody
    }

    /// Stops the child and waits until its task has ended.
    pub async fn stop_and_end(self) {
        self.request(Event::Stop).await;
        let mut status = self.status.clone();
        drop(self.ctl);
        while status.changed().await.is_ok() {}
    }

    /// Waits until the child is running, or has given up (failed or stopped).
    pub async fn settled(&self) -> State {
        settled(self.status.clone()).await
    }
}

/// Waits until a child is running, or has given up (failed or stopped).
pub async fn settled(mut status: watch::Receiver<Status>) -> State {
    let status = status
        .wait_for(|s| matches!(s.state, State::Running | State::Failed | State::Stopped))
        .await;
    status.map_or(State::Stopped, |s| s.state)
}
