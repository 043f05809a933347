//! The lifecycle of one child as a pure state machine, after Horust's `service_handler.rs`:
//! [`Lifecycle::transition`] takes what happened (an [`Event`]: spawned, ready, exited, a timer
//! ran out, a request) and returns what to do (the [`Action`]s: spawn, signal or ask for a
//! hand-over, arm a timer, log, answer clients ourselves, close their parked connections). The task
//! in [`child`](super::child) turns I/O into events and carries out actions; every decision is
//! here, tested without a process.
//!
//! Clients: `restart` asks the process to hand them over to the next one; `stop` does not (the
//! process says goodbye and they are disconnected); [`Event::HandOver`] (a reload that changed the
//! server) hands them over to a successor, the next handle's child. Once the child is stopped or
//! failed with no successor, nobody will adopt their parked connections: they are closed.
//!
//! Timers: each state owns at most one (`Starting` the READY=1 deadline, `Backoff` and `Failed`
//! the wait before the next start, `Stopping` the grace before SIGKILL), so the task keeps one
//! timer, which each arming action replaces. A timer event that arrives in a state that does not
//! own it is stale and changes nothing.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::backoff::{self, Backoff, Verdict};
use crate::config::Restart;

/// How long a child may take to report `READY=1`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child may take to exit after SIGTERM, or after it was asked to hand over, before
/// it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Where a child is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Spawned; waiting for it to report ready.
    Starting,
    /// Ready and serving.
    Running,
    /// Exited; waiting out the backoff delay before the next start.
    Backoff,
    /// Crash-looping: not restarted until the cool-down passes or `restart NAME`.
    Failed,
    /// Being stopped (asked to hand over, or SIGTERM sent) or killed; waiting for it to exit.
    Stopping,
    /// Stopped on request, or exited and not to be restarted by its policy.
    Stopped,
}

crate::spelled!(State, "state", {
    State::Starting => "starting",
    State::Running => "running",
    State::Backoff => "backoff",
    State::Failed => "failed",
    State::Stopping => "stopping",
    State::Stopped => "stopped",
});

impl State {
    /// Whether new clients of a server in this state are answered by the supervisor (nobody
    /// would serve them soon) rather than left waiting in the backlog.
    pub fn unavailable(self) -> bool {
        matches!(self, State::Failed | State::Stopped)
    }
}

/// What happened to a child, or what was asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// [`Action::Spawn`] made a process.
    Spawned,
    /// [`Action::Spawn`] failed (counts as a run that failed at once).
    SpawnFailed,
    /// It sent `READY=1` (a frontend says it again after each new kernel).
    Ready,
    /// It exited; `success`: with code 0.
    Exited { success: bool },
    /// It sent no `WATCHDOG=1` for the whole limit.
    WatchdogExpired,
    /// The deadline of [`Action::WaitReady`] passed.
    ReadyTimeout,
    /// The delay of [`Action::Sleep`] is over.
    BackoffElapsed,
    /// The grace of [`Action::Grace`] is over.
    GraceElapsed,
    /// `start NAME`: run it if it does not run.
    Start,
    /// `stop NAME`: stop it and keep it stopped; its clients are disconnected.
    Stop,
    /// `restart NAME`: stop it if it runs (asking it to hand its clients over to the next process),
    /// and start it afresh (clearing a failed state).
    Restart,
    /// A reload changed the server: stop it as `restart` does, keep it stopped, and leave its
    /// clients' parked connections open for the successor that adopts them.
    HandOver,
    /// [`Action::AskHandOver`] could not ask the process: it gets SIGTERM instead.
    AskFailed,
}

/// What to do; carried out in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start a process; [`Event::Spawned`] or [`Event::SpawnFailed`] follows.
    Spawn,
    /// Send this signal to its process group.
    Kill(Signal),
    /// Ask the process (over its handoff socket) to hand its clients over and exit;
    /// [`Event::AskFailed`] follows if it cannot be asked.
    AskHandOver,
    /// Arm the timer: [`Event::ReadyTimeout`] after this long.
    WaitReady(Duration),
    /// Arm the timer: [`Event::BackoffElapsed`] after this long.
    Sleep(Duration),
    /// Arm the timer: [`Event::GraceElapsed`] after this long.
    Grace(Duration),
    Log(Note),
    /// Answer new clients on its socket ourselves (`server unavailable`) and close.
    Answer,
    /// Stop answering, before a process takes the socket again.
    StopAnswering,
    /// Close the connections its clients parked: nobody will adopt them.
    CloseParked,
}

/// Lines worth a log entry; the task words them with the child's name and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// It reported ready: the `listening …` line.
    Ready,
    /// No `READY=1` within [`READY_TIMEOUT`]; it is stopped and restarted.
    NoReady,
    /// Its watchdog expired: it hangs; it is killed and restarted.
    Hung,
    /// It outlived the grace after SIGTERM; SIGKILL follows.
    Unyielding,
    /// A crash loop: failed until the cool-down or `restart NAME`.
    CrashLoop,
}

/// What follows the exit of a child being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Stay stopped (`stop`, or a hand-over to a successor).
    Stop,
    /// Start afresh (`restart`, or `start` while stopping).
    Restart,
    /// Apply the restart policy, as after a crash (it hung or never became ready).
    Policy,
}

/// One child's lifecycle.
#[derive(Debug)]
pub struct Lifecycle {
    state: State,
    /// Meaningful while [`State::Stopping`].
    then: Then,
    backoff: Backoff,
    restart: Restart,
    /// Once ready, never parked as failed (the kernel: every server needs it).
    essential: bool,
    /// When the current process was spawned.
    started: Option<Instant>,
    spawns: u32,
    /// A successor takes the clients ([`Event::HandOver`]): their parked connections stay open
    /// whatever becomes of this child.
    successor: bool,
}

impl Lifecycle {
    /// A child about to start, and the action that starts it.
    pub fn start(restart: Restart, essential: bool) -> (Self, Vec<Action>) {
        let mut lifecycle = Self {
            state: State::Stopped,
            then: Then::Policy,
            backoff: Backoff::default(),
            restart,
            essential,
            started: None,
            spawns: 0,
            successor: false,
        };
        let actions = lifecycle.spawn();
        (lifecycle, actions)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Starts after the first.
    pub fn restarts(&self) -> u32 {
        self.spawns.saturating_sub(1)
    }

    /// Applies `event`, which happened at `now`, and says what to do.
    pub fn transition(&mut self, event: Event, now: Instant) -> Vec<Action> {
        use Event as E;
        use State::*;
        if event == E::HandOver {
            self.successor = true;
        }
        match (self.state, event) {
            (Starting, E::Spawned) => {
                self.started = Some(now);
                vec![Action::WaitReady(READY_TIMEOUT)]
            }
            (Starting, E::SpawnFailed) => self.exited(false, now),
            (Starting, E::Ready) => self.ready(),
            (Starting, E::ReadyTimeout) => self.stop(Then::Policy, Some(Note::NoReady), Action::Kill(Signal::SIGTERM)),
            (Starting | Running, E::Exited { success }) => self.exited(success, now),
            (Starting | Running, E::WatchdogExpired) => {
                self.stop(Then::Policy, Some(Note::Hung), Action::Kill(Signal::SIGKILL))
            }
            (Starting | Running, E::Stop) => self.stop(Then::Stop, None, Action::Kill(Signal::SIGTERM)),
            (Starting | Running, E::Restart) => self.stop(Then::Restart, None, Action::AskHandOver),
            (Starting | Running, E::HandOver) => self.stop(Then::Stop, None, Action::AskHandOver),

            (Stopping, E::Exited { .. }) => match self.then {
                Then::Stop => self.stopped(),
                Then::Restart => {
                    self.backoff.reset();
                    self.spawn()
                }
                // Killed for a fault: a failure, whatever its exit status.
                Then::Policy => self.exited(false, now),
            },
            (Stopping, E::AskFailed) => vec![Action::Kill(Signal::SIGTERM)],
            (Stopping, E::GraceElapsed) => vec![Action::Log(Note::Unyielding), Action::Kill(Signal::SIGKILL)],
            // The last request wins.
            (Stopping, E::Stop | E::HandOver) => {
                self.then = Then::Stop;
                vec![]
            }
            (Stopping, E::Start | E::Restart) => {
                self.then = Then::Restart;
                vec![]
            }

            (Backoff, E::BackoffElapsed) => self.spawn(),
            (Backoff, E::Start | E::Restart) => {
                self.backoff.reset();
                self.spawn()
            }
            (Backoff, E::Stop | E::HandOver) => self.stopped(),

            // The cool-down is over: one more try (the crash-loop verdict cleared the history).
            (Failed, E::BackoffElapsed) => self.take_over(),
            (Failed | Stopped, E::Start | E::Restart) => {
                self.backoff.reset();
                self.take_over()
            }
            // Already answering, and its parked connections closed when it failed.
            (Failed, E::Stop | E::HandOver) => {
                self.state = Stopped;
                vec![]
            }

            // Nothing to do: `start` of a running child, `stop` of a stopped one, `READY=1`
            // again, and stale timers and failures. A child that is stopping may stop pinging its
            // watchdog: the grace bounds it already.
            (Starting | Running, E::Start)
            | (Running, E::Spawned | E::SpawnFailed | E::Ready | E::ReadyTimeout)
            | (Starting | Running, E::BackoffElapsed | E::GraceElapsed | E::AskFailed)
            | (Stopping, E::Spawned | E::SpawnFailed | E::Ready | E::WatchdogExpired)
            | (Stopping, E::ReadyTimeout | E::BackoffElapsed)
            | (Backoff | Failed | Stopped, E::Spawned | E::SpawnFailed | E::Ready | E::Exited { .. })
            | (Backoff | Failed | Stopped, E::WatchdogExpired | E::ReadyTimeout | E::GraceElapsed)
            | (Backoff | Failed | Stopped, E::AskFailed)
            | (Stopped, E::BackoffElapsed | E::Stop | E::HandOver) => vec![],
        }
    }

    fn ready(&mut self) -> Vec<Action> {
        self.state = State::Running;
        if self.essential {
            self.backoff.never_fail();
        }
        vec![Action::Log(Note::Ready)]
    }

    fn spawn(&mut self) -> Vec<Action> {
        self.state = State::Starting;
        self.spawns += 1;
        self.started = None;
        vec![Action::Spawn]
    }

    /// A start after the supervisor answered for it: it stops answering first.
    fn take_over(&mut self) -> Vec<Action> {
        let mut actions = vec![Action::StopAnswering];
        actions.extend(self.spawn());
        actions
    }

    fn stopped(&mut self) -> Vec<Action> {
        self.state = State::Stopped;
        self.started = None;
        let mut actions = vec![Action::Answer];
        actions.extend(self.close_parked());
        actions
    }

    /// Closing the parked connections, unless a successor adopts them.
    fn close_parked(&self) -> Option<Action> {
        (!self.successor).then_some(Action::CloseParked)
    }

    /// Stops the process: `first` asks it to hand over or signals it; the grace bounds either.
    fn stop(&mut self, then: Then, note: Option<Note>, first: Action) -> Vec<Action> {
        self.state = State::Stopping;
        self.then = then;
        let mut actions: Vec<Action> = note.map(Action::Log).into_iter().collect();
        actions.extend([first, Action::Grace(GRACE)]);
        actions
    }

    /// After an exit on its own: the restart policy, the backoff delay, the crash-loop rule.
    fn exited(&mut self, success: bool, now: Instant) -> Vec<Action> {
        let ran = self
            .started
            .take()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let again = match self.restart {
            Restart::Always => true,
            Restart::OnFailure => !success,
            Restart::Never => false,
        };
        if !again {
            return self.stopped();
        }
        match self.backoff.failed(now, ran) {
            Verdict::Retry(Duration::ZERO) => self.spawn(),
            Verdict::Retry(delay) => {
                self.state = State::Backoff;
                vec![Action::Sleep(delay)]
            }
            Verdict::Failed => {
                self.state = State::Failed;
                let mut actions = vec![Action::Log(Note::CrashLoop), Action::Answer];
                actions.extend(self.close_parked());
                actions.push(Action::Sleep(backoff::COOL_DOWN));
                actions
            }
        }
    }
}

#[cfg(test)]
mod tests;
