//! One supervised child (the kernel or a frontend) and the task that carries out its
//! [`Lifecycle`]: it turns what happens (the process spawned or exited, `READY=1` and
//! `WATCHDOG=1` on its notify socket, a timer, a request) into events, and carries out the
//! actions the lifecycle answers with. Every decision is in [`lifecycle`](super::lifecycle).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;
use tokio::sync::{mpsc, oneshot, watch};

use super::backoff;
use super::lifecycle::{Action, Event, Lifecycle, Note, READY_TIMEOUT, State};
use super::logfile::ChildLog;
use super::parked::{self, Parked};
use super::spawn::{self, Process};
use super::unavailable::Answering;
use super::watchdog::{self, Notice, Watchdog};
use crate::config::{Restart, Server};
use crate::handoff::Message;
use crate::handoff::socket::Channel;

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
            Role::Frontend { server, .. } => server.kind.to_string(),
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

/// What a frontend's clients need across its processes, even across handles (a reload that
/// changes the server hands them from the old handle to the new one): their parked connections
/// and the server's position file.
#[derive(Clone, Default)]
pub struct Carry {
    parked: Arc<Mutex<Parked>>,
    state: Option<Arc<std::os::fd::OwnedFd>>,
}

/// The supervisor's handle on a child's task. Dropping it (its `ctl` sender) stops the child and
/// ends the task.
pub struct Handle {
    pub spec: Spec,
    ctl: mpsc::Sender<Ctl>,
    pub status: watch::Receiver<Status>,
    carry: Carry,
}

impl Handle {
    /// Starts the task, which starts the child.
    pub fn start(spec: Spec) -> Self {
        Self::start_with(spec, None)
    }

    /// Starts the task with what an earlier handle of the same server carried (see
    /// [`Handle::hand_over_and_end`]), or afresh.
    pub fn start_with(spec: Spec, carry: Option<Carry>) -> Self {
        let (ctl, ctl_rx) = mpsc::channel(8);
        let (status_tx, status) = watch::channel(Status {
            state: State::Starting,
            pid: None,
            since: None,
            restarts: 0,
        });
        let carry = carry.unwrap_or_else(|| Carry::new(&spec));
        tokio::spawn(supervise(spec.clone(), carry.clone(), ctl_rx, status_tx));
        Self {
            spec,
            ctl,
            status,
            carry,
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
    /// returns the clients for the next handle of the server ([`Handle::start_with`]).
    pub async fn hand_over_and_end(self) -> Carry {
        self.request(Event::HandOver).await;
        let carry = self.carry.clone();
        self.stop_and_end().await;
        carry
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

/// The one timer of a child (see [`lifecycle`](super::lifecycle)): when, and the event it makes.
type Timer = Option<(tokio::time::Instant, Event)>;

impl Carry {
    /// A fresh one: nothing parked, and (a frontend) a new position file with a slot per
    /// connection it may hold.
    fn new(spec: &Spec) -> Self {
        let state = match &spec.role {
            Role::Frontend { server, .. } => {
                let slots = server.max_connections.min(u32::MAX as usize - 1) as u32;
                crate::handoff::state::State::create(&spec.name, slots)
                    .map_err(
                        |e| tracing::warn!(name = %spec.name, error = %e, "no position file: a restart may lose lines"),
                    )
                    .ok()
                    .map(Arc::new)
            }
            Role::Kernel { .. } => None,
        };
        Self {
            parked: Arc::new(Mutex::new(Parked::default())),
            state,
        }
    }
}

async fn supervise(spec: Spec, carry: Carry, mut ctl: mpsc::Receiver<Ctl>, status: watch::Sender<Status>) {
    let log = match ChildLog::open(&spec.log_dir, &spec.name, spec.log_keep) {
        Ok(log) => log,
        Err(e) => {
            tracing::error!(name = %spec.name, error = %format!("{e:#}"), "cannot open the child's log file");
            return;
        }
    };
    let essential = matches!(spec.role, Role::Kernel { .. });
    let (mut lifecycle, first) = Lifecycle::start(spec.restart, essential);
    let mut run = Run {
        spec: &spec,
        log,
        process: None,
        notify: None,
        watchdog: None,
        answering: None,
        timer: None,
        events: VecDeque::new(),
        handoff: None,
        parked: carry.parked,
        state: carry.state,
    };
    run.execute(first);
    // Replies owed, sent once the child is no longer stopping.
    let mut owed: Vec<(oneshot::Sender<State>, State)> = Vec::new();
    // The supervisor let go: stop the child, then end.
    let mut ending = false;
    let mut buf = [0u8; 256];
    loop {
        while let Some(event) = run.events.pop_front() {
            let actions = lifecycle.transition(event, Instant::now());
            run.execute(actions);
        }
        let state = lifecycle.state();
        let pid = run.process.as_ref().map(|p| p.pid);
        status.send_if_modified(|s| {
            let changed = (s.state, s.pid, s.restarts) != (state, pid, lifecycle.restarts());
            if s.state != state {
                s.since = (state == State::Running).then(Instant::now);
            }
            (s.state, s.pid, s.restarts) = (state, pid, lifecycle.restarts());
            changed
        });
        if state != State::Stopping {
            for (done, before) in owed.drain(..) {
                let _ = done.send(before);
            }
            if ending && state == State::Stopped {
                break;
            }
        }

        let event = tokio::select! {
            received = recv(&run.notify, &mut buf) => {
                match received {
                    Ok(n) => run.notices(&buf[..n]),
                    Err(e) => {
                        // Its watchdog, if any, will have its way.
                        tracing::warn!(name = %spec.name, error = %e, "notify socket failed");
                        run.notify = None;
                    }
                }
                continue;
            }
            received = recv_handoff(&run.handoff) => {
                match received {
                    Ok(Some((message, fds))) => run.parked(message, fds),
                    Ok(None) => run.handoff = None,
                    Err(e) => {
                        tracing::warn!(name = %spec.name, error = %e, "handoff socket failed; its clients no longer outlive it");
                        run.handoff = None;
                    }
                }
                continue;
            }
            exited = wait(&mut run.process) => {
                let mut process = run.process.take().expect("waited on it");
                // Its last words (on `down` the supervisor exits next) go to its log first.
                process.drained().await;
                // So do its last packets (a park, what its readers left on a hand-over): before
                // its next process is started and adopts.
                while let Some((message, fds)) = run.handoff.as_ref().and_then(|c| c.try_recv().ok().flatten()) {
                    run.parked(message, fds);
                }
                let ran = process.started.elapsed();
                tracing::warn!(name = %spec.name, pid = process.pid, ?ran, "exited: {}", spawn::describe(&exited));
                (run.watchdog, run.notify) = (None, None);
                Event::Exited { success: exited.is_ok_and(|s| s.success()) }
            }
            _ = sleep_until(run.timer.map(|(at, _)| at)) => run.timer.take().expect("armed").1,
            _ = sleep_until(run.watchdog.and_then(|w| w.deadline())) => {
                let now = tokio::time::Instant::now();
                let paused = |w: &Watchdog| w.noticed_late(now) || super::pulse::missed_since(w.last(), now);
                if let Some(watchdog) = run.watchdog.as_mut().filter(|w| paused(w)) {
                    // We were paused (the whole host, say): the child could not be heard either.
                    tracing::warn!(name = %spec.name, "the supervisor itself was paused past a watchdog deadline; not taking the child for hung");
                    watchdog.alive(now);
                    continue;
                }
                run.watchdog = None;
                Event::WatchdogExpired
            }
            request = ctl.recv(), if !ending => match request {
                Some(Ctl { request, done }) => {
                    owed.push((done, lifecycle.state()));
                    request
                }
                None => {
                    ending = true;
                    Event::Stop
                }
            },
        };
        run.events.push_back(event);
    }
    let _ = std::fs::remove_file(&spec.notify_socket);
}

/// The I/O side of one child: what [`Action`]s act on.
struct Run<'a> {
    spec: &'a Spec,
    log: ChildLog,
    process: Option<Process>,
    /// Where the current process reports.
    notify: Option<UnixDatagram>,
    /// The watchdog of the current process, until it expires.
    watchdog: Option<Watchdog>,
    /// While it is stopped or failed, its clients are answered by us.
    answering: Option<Answering>,
    timer: Timer,
    /// Events that actions caused (a spawn's outcome, `READY=1`), applied before waiting again.
    events: VecDeque<Event>,
    /// Our end of the current process's handoff socket (a frontend).
    handoff: Option<Arc<Channel>>,
    /// Its clients' connections, kept across its restarts.
    parked: Arc<Mutex<Parked>>,
    /// Its position file (see [`crate::handoff::state`]), kept across its restarts.
    state: Option<Arc<std::os::fd::OwnedFd>>,
}

impl Run<'_> {
    fn execute(&mut self, actions: Vec<Action>) {
        let name = &self.spec.name;
        let after = |d: Duration| tokio::time::Instant::now() + d;
        for action in actions {
            match action {
                Action::Spawn => match Process::spawn(self.spec, &self.log) {
                    Ok((process, notify, handoff)) => {
                        self.handoff = handoff.and_then(|fd| self.adopt(fd, process.pid));
                        self.notify = Some(notify);
                        self.watchdog = Some(Watchdog::new(self.spec.watchdog, tokio::time::Instant::now()));
                        self.process = Some(process);
                        self.events.push_back(Event::Spawned);
                    }
                    Err(e) => {
                        tracing::error!(name = %name, error = %format!("{e:#}"), "could not start");
                        self.events.push_back(Event::SpawnFailed);
                    }
                },
                Action::Kill(signal) => {
                    if let Some(process) = &self.process {
                        process.signal(signal);
                    }
                }
                Action::AskHandOver => {
                    if !self.ask_hand_over() {
                        self.events.push_back(Event::AskFailed);
                    }
                }
                Action::WaitReady(d) => self.timer = Some((after(d), Event::ReadyTimeout)),
                Action::Sleep(d) => self.timer = Some((after(d), Event::BackoffElapsed)),
                Action::Grace(d) => self.timer = Some((after(d), Event::GraceElapsed)),
                Action::Log(note) => self.log(note),
                Action::Answer => {
                    if let Role::Frontend { server, listener } = &self.spec.role {
                        self.answering = Answering::start(server, listener)
                            .map_err(|e| tracing::warn!(name = %name, error = %e, "cannot answer its clients"))
                            .ok();
                    }
                }
                Action::StopAnswering => self.answering = None,
                Action::CloseParked => {
                    let closed = self.parked.lock().clear();
                    if closed > 0 {
                        tracing::info!(name = %name, closed, "closed the connections its clients had parked");
                    }
                }
            }
        }
    }

    fn log(&self, note: Note) {
        let name = &self.spec.name;
        let pid = self.process.as_ref().map_or(0, |p| p.pid);
        match note {
            Note::Ready => match &self.spec.role {
                Role::Kernel { .. } => {
                    tracing::info!(
                        "ready name=kernel socket={} pid={pid}",
                        self.spec.kernel_socket.display()
                    )
                }
                Role::Frontend { server, .. } => tracing::info!(
                    "listening name={} kind={} addr={} pid={pid}",
                    server.name,
                    server.kind,
                    self.spec.address()
                ),
            },
            Note::NoReady => tracing::error!(name, pid, "no READY=1 within {READY_TIMEOUT:?}; stopping it"),
            Note::Hung => {
                let silence = self.spec.watchdog.unwrap_or_default().as_secs_f64();
                tracing::error!("watchdog: {name} hung (no WATCHDOG=1 for {silence}s); killing it");
            }
            Note::Unyielding => tracing::warn!(
                name,
                pid,
                "did not stop within {:?} of SIGTERM; sending SIGKILL",
                super::lifecycle::GRACE
            ),
            Note::CrashLoop => tracing::error!(
                name = %name,
                "FAILED: crash loop ({} exits within {:?}); next try in {:?}, or now with `chat-supervisor restart {name}`",
                backoff::LOOP_FAILURES,
                backoff::WINDOW,
                backoff::COOL_DOWN,
            ),
        }
    }

    /// Serves a new process's handoff socket: sends it every parked connection (on a task of its
    /// own, since a large adoption waits for the process to read it).
    fn adopt(&self, fd: std::os::fd::OwnedFd, pid: u32) -> Option<Arc<Channel>> {
        let channel = match Channel::of_child(fd, pid) {
            Ok(channel) => Arc::new(channel),
            Err(e) => {
                tracing::warn!(name = %self.spec.name, error = %e, "cannot serve the handoff socket");
                return None;
            }
        };
        let (name, parked) = (self.spec.name.clone(), self.parked.clone());
        let state = self.state.clone()?;
        let sending = channel.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            match parked::adopt(sending, state, parked).await {
                Ok(0) => {}
                Ok(clients) => {
                    tracing::info!(name = %name, clients, took = ?started.elapsed(), "handed its parked clients to the new process")
                }
                Err(e) => tracing::warn!(name = %name, error = %e, "could not hand the parked clients over"),
            }
        });
        Some(channel)
    }

    /// Applies a packet of the frontend's handoff socket to its parked connections.
    fn parked(&self, message: Message, fds: Vec<std::os::fd::OwnedFd>) {
        if !self.parked.lock().apply(message, fds) {
            tracing::warn!(name = %self.spec.name, "unexpected handoff message from the frontend");
        }
    }

    /// Asks the process to hand its clients over and exit; false if it cannot be asked.
    fn ask_hand_over(&self) -> bool {
        let Some(channel) = &self.handoff else { return false };
        match channel.try_send(&Message::HandOver, &[]) {
            Ok(()) => {
                tracing::info!(name = %self.spec.name, "asked it to hand its clients over");
                true
            }
            Err(e) => {
                tracing::warn!(name = %self.spec.name, error = %e, "could not ask for a hand-over; stopping it");
                false
            }
        }
    }

    /// Applies what a notify datagram says.
    fn notices(&mut self, datagram: &[u8]) {
        for notice in watchdog::notices(datagram) {
            match notice {
                Notice::Alive => {
                    if let Some(watchdog) = &mut self.watchdog {
                        watchdog.alive(tokio::time::Instant::now());
                    }
                }
                Notice::Ready => self.events.push_back(Event::Ready),
                Notice::Stopping => tracing::debug!(name = %self.spec.name, "stopping"),
            }
        }
    }
}

/// The next notify datagram of the process; pending without one.
async fn recv(notify: &Option<UnixDatagram>, buf: &mut [u8]) -> std::io::Result<usize> {
    match notify {
        Some(notify) => notify.recv(buf).await,
        None => std::future::pending().await,
    }
}

/// The next packet on the handoff socket; pending without one.
async fn recv_handoff(handoff: &Option<Arc<Channel>>) -> std::io::Result<Option<(Message, Vec<std::os::fd::OwnedFd>)>> {
    match handoff {
        Some(channel) => channel.recv().await,
        None => std::future::pending().await,
    }
}

/// The exit of the process; pending without one.
async fn wait(process: &mut Option<Process>) -> std::io::Result<std::process::ExitStatus> {
    match process {
        Some(process) => process.wait().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
