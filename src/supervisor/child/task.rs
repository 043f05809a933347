//! The task that carries out one child's [`Lifecycle`]: it turns what happens (the process
//! spawned or exited, `READY=1` and `WATCHDOG=1` on its notify socket, a packet on its handoff
//! socket, a timer, a request) into events, and carries out the actions the lifecycle answers
//! with. Every decision is in [`lifecycle`].

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;
use tokio::sync::{mpsc, oneshot, watch};

use super::{Ctl, Role, Spec, Status};
use crate::handoff::Message;
use crate::handoff::socket::Channel;
use crate::supervisor::backoff;
use crate::supervisor::custody::Custody;
use crate::supervisor::lifecycle::{self, Action, Event, Lifecycle, Note, READY_TIMEOUT, State};
use crate::supervisor::logfile::ChildLog;
use crate::supervisor::spawn::{self, Process};
use crate::supervisor::unavailable::Answering;
use crate::supervisor::watchdog::{self, Notice, Watchdog};

/// The one timer of a child (see [`lifecycle`]): when, and the event it makes.
type Timer = Option<(tokio::time::Instant, Event)>;

/// A packet of the handoff socket and the descriptors it carried.
type Packet = (Message, Vec<OwnedFd>);

/// What woke the task.
enum Wake {
    /// A notify datagram of this many bytes.
    Notify(std::io::Result<usize>),
    /// A packet on the handoff socket; `None`: the process closed it.
    Handoff(std::io::Result<Option<Packet>>),
    Exited(std::io::Result<ExitStatus>),
    Timer,
    Watchdog,
    /// A request; `None`: the supervisor let go of the handle.
    Ctl(Option<Ctl>),
}

pub(super) async fn supervise(
    spec: Spec,
    custody: Custody,
    mut ctl: mpsc::Receiver<Ctl>,
    status: watch::Sender<Status>,
) {
    let Some(mut run) = Run::open(&spec, custody) else {
        return;
    };
    let essential = matches!(spec.role, Role::Kernel { .. });
    let (mut lifecycle, first) = Lifecycle::start(spec.restart, essential);
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
        publish(&status, &lifecycle, run.process.as_ref().map(|p| p.pid));
        if state != State::Stopping {
            for (done, before) in owed.drain(..) {
                let _ = done.send(before);
            }
            if ending && state == State::Stopped {
                break;
            }
        }

        let wake = tokio::select! {
            received = recv(&run.notify, &mut buf) => Wake::Notify(received),
            received = recv_handoff(&run.handoff) => Wake::Handoff(received),
            exited = wait(&mut run.process) => Wake::Exited(exited),
            _ = sleep_until(run.timer.map(|(at, _)| at)) => Wake::Timer,
            _ = sleep_until(run.watchdog.and_then(|w| w.deadline())) => Wake::Watchdog,
            request = ctl.recv(), if !ending => Wake::Ctl(request),
        };
        let event = match wake {
            Wake::Ctl(Some(Ctl { request, done })) => {
                owed.push((done, state));
                Some(request)
            }
            Wake::Ctl(None) => {
                ending = true;
                Some(Event::Stop)
            }
            wake => run.woken(wake, &buf).await,
        };
        run.events.extend(event);
    }
    let _ = std::fs::remove_file(&spec.notify_socket);
}

/// Shows the child's state, pid and restarts to `status` (and when it became ready, for uptime).
fn publish(status: &watch::Sender<Status>, lifecycle: &Lifecycle, pid: Option<u32>) {
    let (state, restarts) = (lifecycle.state(), lifecycle.restarts());
    status.send_if_modified(|s| {
        let changed = (s.state, s.pid, s.restarts) != (state, pid, restarts);
        if s.state != state {
            s.since = (state == State::Running).then(Instant::now);
        }
        (s.state, s.pid, s.restarts) = (state, pid, restarts);
        changed
    });
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
    /// Its clients' parked connections and its position file, kept across its restarts.
    custody: Custody,
}

impl<'a> Run<'a> {
    /// Nothing started yet; `None` (logged) if the child's log file cannot be opened.
    fn open(spec: &'a Spec, custody: Custody) -> Option<Self> {
        let log = ChildLog::open(&spec.log_dir, &spec.name, spec.log_keep)
            .map_err(
                |e| tracing::error!(name = %spec.name, error = %format!("{e:#}"), "cannot open the child's log file"),
            )
            .ok()?;
        Some(Self {
            spec,
            log,
            process: None,
            notify: None,
            watchdog: None,
            answering: None,
            timer: None,
            events: VecDeque::new(),
            handoff: None,
            custody,
        })
    }

    fn execute(&mut self, actions: Vec<Action>) {
        let name = &self.spec.name;
        let after = |d: Duration| tokio::time::Instant::now() + d;
        for action in actions {
            match action {
                Action::Spawn => self.spawn(),
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
                Action::CloseParked => self.custody.close_parked(name),
            }
        }
    }

    fn spawn(&mut self) {
        match Process::spawn(self.spec, &self.log) {
            Ok((process, notify, handoff)) => {
                let name = &self.spec.name;
                self.handoff = handoff.and_then(|fd| self.custody.serve_handoff_socket(name, fd, process.pid));
                self.notify = Some(notify);
                self.watchdog = Some(Watchdog::new(self.spec.watchdog, tokio::time::Instant::now()));
                self.process = Some(process);
                self.events.push_back(Event::Spawned);
            }
            Err(e) => {
                tracing::error!(name = %self.spec.name, error = %format!("{e:#}"), "could not start");
                self.events.push_back(Event::SpawnFailed);
            }
        }
    }

    /// Turns what woke the task (but a request) into an event, if it makes one.
    async fn woken(&mut self, wake: Wake, buf: &[u8]) -> Option<Event> {
        let name = &self.spec.name;
        match wake {
            Wake::Notify(Ok(n)) => self.notices(&buf[..n]),
            Wake::Notify(Err(e)) => {
                // Its watchdog, if any, will have its way.
                tracing::warn!(name = %name, error = %e, "notify socket failed");
                self.notify = None;
            }
            Wake::Handoff(Ok(Some((message, fds)))) => self.custody.apply(name, message, fds),
            Wake::Handoff(Ok(None)) => self.handoff = None,
            Wake::Handoff(Err(e)) => {
                tracing::warn!(name = %name, error = %e, "handoff socket failed; its clients no longer outlive it");
                self.handoff = None;
            }
            Wake::Exited(exited) => return Some(self.exited(exited).await),
            Wake::Timer => return Some(self.timer.take().expect("armed").1),
            Wake::Watchdog => return self.watchdog_deadline(),
            Wake::Ctl(_) => unreachable!("requests are the task's"),
        }
        None
    }

    /// The process exited: its last words and packets are taken in, then the event.
    async fn exited(&mut self, exited: std::io::Result<ExitStatus>) -> Event {
        let mut process = self.process.take().expect("waited on it");
        // Its last words (on `down` the supervisor exits next) go to its log first.
        process.drained().await;
        // So do its last packets (a park, what its readers left on a hand-over): before its next
        // process is started and adopts.
        while let Some((message, fds)) = self.handoff.as_ref().and_then(|c| c.try_recv().ok().flatten()) {
            self.custody.apply(&self.spec.name, message, fds);
        }
        let ran = process.started.elapsed();
        tracing::warn!(name = %self.spec.name, pid = process.pid, ?ran, "exited: {}", spawn::describe(&exited));
        (self.watchdog, self.notify) = (None, None);
        Event::Exited {
            success: exited.is_ok_and(|s| s.success()),
        }
    }

    /// The watchdog's deadline passed: the child hangs, unless we were paused ourselves.
    fn watchdog_deadline(&mut self) -> Option<Event> {
        let now = tokio::time::Instant::now();
        let paused = |w: &Watchdog| w.noticed_late(now) || crate::supervisor::pulse::missed_since(w.last(), now);
        if let Some(watchdog) = self.watchdog.as_mut().filter(|w| paused(w)) {
            // We were paused (the whole host, say): the child could not be heard either.
            tracing::warn!(name = %self.spec.name, "the supervisor itself was paused past a watchdog deadline; not taking the child for hung");
            watchdog.alive(now);
            return None;
        }
        self.watchdog = None;
        Some(Event::WatchdogExpired)
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
                    server.settings.name,
                    server.settings.kind,
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
                lifecycle::GRACE
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
async fn recv_handoff(handoff: &Option<Arc<Channel>>) -> std::io::Result<Option<Packet>> {
    match handoff {
        Some(channel) => channel.recv().await,
        None => std::future::pending().await,
    }
}

/// The exit of the process; pending without one.
async fn wait(process: &mut Option<Process>) -> std::io::Result<ExitStatus> {
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
