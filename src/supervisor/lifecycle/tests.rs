//! Every (state, event) pair, then the races and loops that matter, without a process.

use super::*;
use Action::*;
use Event as E;
use Signal::{SIGKILL, SIGTERM};
use State::*;

const EVENTS: [Event; 13] = [
    E::Spawned,
    E::SpawnFailed,
    E::Ready,
    E::Exited { success: false },
    E::WatchdogExpired,
    E::ReadyTimeout,
    E::BackoffElapsed,
    E::GraceElapsed,
    E::Start,
    E::Stop,
    E::Restart,
    E::HandOver,
    E::AskFailed,
];

/// A clock for one test: `at(ms)` is that long after its start.
struct Clock(Instant);

impl Clock {
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// Drives a lifecycle through `events`, one millisecond apart, and returns it with the actions of
/// the last one.
fn drive(restart: Restart, events: &[Event]) -> (Lifecycle, Vec<Action>) {
    let clock = Clock(Instant::now());
    let (mut lifecycle, mut actions) = Lifecycle::start(restart, false);
    for (i, event) in events.iter().enumerate() {
        actions = lifecycle.transition(*event, clock.at(i as u64));
    }
    (lifecycle, actions)
}

/// The events that bring a fresh child into `state`.
fn into(state: State) -> Vec<Event> {
    let crash = [E::Spawned, E::Exited { success: false }];
    match state {
        Starting => vec![E::Spawned],
        Running => vec![E::Spawned, E::Ready],
        // The first quick exit restarts at once, the second waits.
        Backoff => [crash, crash].concat(),
        Failed => {
            // From the second quick exit on, each waits out its backoff first.
            let mut events = crash.to_vec();
            for _ in 1..backoff::LOOP_FAILURES {
                if events.len() > 2 {
                    events.push(E::BackoffElapsed);
                }
                events.extend(crash);
            }
            events
        }
        Stopping => vec![E::Spawned, E::Ready, E::Stop],
        Stopped => vec![E::Spawned, E::Ready, E::Stop, E::Exited { success: true }],
    }
}

fn in_state(state: State) -> Lifecycle {
    let (lifecycle, _) = drive(Restart::Always, &into(state));
    assert_eq!(lifecycle.state(), state, "setting up {state}");
    lifecycle
}

/// Every (state, event) pair of a child without a successor: the state it goes to and the
/// actions.
fn table() -> Vec<(State, Event, State, Vec<Action>)> {
    let stop = vec![Kill(SIGTERM), Grace(GRACE)];
    let hand_over = vec![AskHandOver, Grace(GRACE)];
    vec![
        (Starting, E::Spawned, Starting, vec![WaitReady(READY_TIMEOUT)]),
        // The first failure of a run restarts at once.
        (Starting, E::SpawnFailed, Starting, vec![Spawn]),
        (Starting, E::Ready, Running, vec![Log(Note::Ready)]),
        (Starting, E::Exited { success: false }, Starting, vec![Spawn]),
        (
            Starting,
            E::WatchdogExpired,
            Stopping,
            vec![Log(Note::Hung), Kill(SIGKILL), Grace(GRACE)],
        ),
        (
            Starting,
            E::ReadyTimeout,
            Stopping,
            vec![Log(Note::NoReady), Kill(SIGTERM), Grace(GRACE)],
        ),
        (Starting, E::BackoffElapsed, Starting, vec![]),
        (Starting, E::GraceElapsed, Starting, vec![]),
        (Starting, E::Start, Starting, vec![]),
        (Starting, E::Stop, Stopping, stop.clone()),
        (Starting, E::Restart, Stopping, hand_over.clone()),
        (Starting, E::HandOver, Stopping, hand_over.clone()),
        (Starting, E::AskFailed, Starting, vec![]),
        (Running, E::Spawned, Running, vec![]),
        (Running, E::SpawnFailed, Running, vec![]),
        (Running, E::Ready, Running, vec![]),
        (Running, E::Exited { success: false }, Starting, vec![Spawn]),
        (
            Running,
            E::WatchdogExpired,
            Stopping,
            vec![Log(Note::Hung), Kill(SIGKILL), Grace(GRACE)],
        ),
        (Running, E::ReadyTimeout, Running, vec![]),
        (Running, E::BackoffElapsed, Running, vec![]),
        (Running, E::GraceElapsed, Running, vec![]),
        (Running, E::Start, Running, vec![]),
        (Running, E::Stop, Stopping, stop.clone()),
        (Running, E::Restart, Stopping, hand_over.clone()),
        (Running, E::HandOver, Stopping, hand_over.clone()),
        (Running, E::AskFailed, Running, vec![]),
        (Stopping, E::Spawned, Stopping, vec![]),
        (Stopping, E::SpawnFailed, Stopping, vec![]),
        (Stopping, E::Ready, Stopping, vec![]),
        (
            Stopping,
            E::Exited { success: false },
            Stopped,
            vec![Answer, CloseParked],
        ),
        (Stopping, E::WatchdogExpired, Stopping, vec![]),
        (Stopping, E::ReadyTimeout, Stopping, vec![]),
        (Stopping, E::BackoffElapsed, Stopping, vec![]),
        (
            Stopping,
            E::GraceElapsed,
            Stopping,
            vec![Log(Note::Unyielding), Kill(SIGKILL)],
        ),
        (Stopping, E::Start, Stopping, vec![]),
        (Stopping, E::Stop, Stopping, vec![]),
        (Stopping, E::Restart, Stopping, vec![]),
        (Stopping, E::HandOver, Stopping, vec![]),
        (Stopping, E::AskFailed, Stopping, vec![Kill(SIGTERM)]),
        (Backoff, E::Spawned, Backoff, vec![]),
        (Backoff, E::SpawnFailed, Backoff, vec![]),
        (Backoff, E::Ready, Backoff, vec![]),
        (Backoff, E::Exited { success: false }, Backoff, vec![]),
        (Backoff, E::WatchdogExpired, Backoff, vec![]),
        (Backoff, E::ReadyTimeout, Backoff, vec![]),
        (Backoff, E::BackoffElapsed, Starting, vec![Spawn]),
        (Backoff, E::GraceElapsed, Backoff, vec![]),
        (Backoff, E::Start, Starting, vec![Spawn]),
        (Backoff, E::Stop, Stopped, vec![Answer, CloseParked]),
        (Backoff, E::Restart, Starting, vec![Spawn]),
        // The successor adopts the clients: their connections stay open.
        (Backoff, E::HandOver, Stopped, vec![Answer]),
        (Backoff, E::AskFailed, Backoff, vec![]),
        (Failed, E::Spawned, Failed, vec![]),
        (Failed, E::SpawnFailed, Failed, vec![]),
        (Failed, E::Ready, Failed, vec![]),
        (Failed, E::Exited { success: false }, Failed, vec![]),
        (Failed, E::WatchdogExpired, Failed, vec![]),
        (Failed, E::ReadyTimeout, Failed, vec![]),
        (Failed, E::BackoffElapsed, Starting, vec![StopAnswering, Spawn]),
        (Failed, E::GraceElapsed, Failed, vec![]),
        (Failed, E::Start, Starting, vec![StopAnswering, Spawn]),
        (Failed, E::Stop, Stopped, vec![]),
        (Failed, E::Restart, Starting, vec![StopAnswering, Spawn]),
        (Failed, E::HandOver, Stopped, vec![]),
        (Failed, E::AskFailed, Failed, vec![]),
        (Stopped, E::Spawned, Stopped, vec![]),
        (Stopped, E::SpawnFailed, Stopped, vec![]),
        (Stopped, E::Ready, Stopped, vec![]),
        (Stopped, E::Exited { success: false }, Stopped, vec![]),
        (Stopped, E::WatchdogExpired, Stopped, vec![]),
        (Stopped, E::ReadyTimeout, Stopped, vec![]),
        (Stopped, E::BackoffElapsed, Stopped, vec![]),
        (Stopped, E::GraceElapsed, Stopped, vec![]),
        (Stopped, E::Start, Starting, vec![StopAnswering, Spawn]),
        (Stopped, E::Stop, Stopped, vec![]),
        (Stopped, E::Restart, Starting, vec![StopAnswering, Spawn]),
        (Stopped, E::HandOver, Stopped, vec![]),
        (Stopped, E::AskFailed, Stopped, vec![]),
    ]
}

#[test]
fn every_transition() {
    let table = table();
    // The table covers every pair.
    for state in State::ALL {
        for event in EVENTS {
            let rows = table.iter().filter(|(s, e, ..)| s == state && *e == event).count();
            assert_eq!(rows, 1, "({state}, {event:?}) has {rows} rows");
        }
    }
    for (state, event, next, actions) in table {
        let mut lifecycle = in_state(state);
        let now = Instant::now() + Duration::from_secs(1);
        let got = lifecycle.transition(event, now);
        assert_eq!((lifecycle.state(), &got), (next, &actions), "({state}, {event:?})");
        assert_eq!(lifecycle.successor, event == E::HandOver, "({state}, {event:?})");
    }
}

/// With a successor (after [`Event::HandOver`]), every pair goes as without one, but no parked
/// connection is ever closed.
#[test]
fn every_transition_with_a_successor() {
    for (state, event, next, actions) in table() {
        let mut lifecycle = in_state(state);
        lifecycle.successor = true;
        let now = Instant::now() + Duration::from_secs(1);
        let got = lifecycle.transition(event, now);
        let kept: Vec<Action> = actions.into_iter().filter(|a| *a != CloseParked).collect();
        assert_eq!(
            (lifecycle.state(), &got),
            (next, &kept),
            "({state}, {event:?}) with a successor"
        );
        assert!(lifecycle.successor, "({state}, {event:?}): a successor stays one");
    }
}

#[test]
fn a_crash_loop_backs_off_then_fails_then_tries_again_after_the_cool_down() {
    let clock = Clock(Instant::now());
    let (mut child, actions) = Lifecycle::start(Restart::Always, false);
    assert_eq!(actions, [Spawn]);
    let mut waits = Vec::new();
    for i in 0..backoff::LOOP_FAILURES as u64 {
        child.transition(E::Spawned, clock.at(i * 10));
        let actions = child.transition(E::Exited { success: false }, clock.at(i * 10 + 1));
        match child.state() {
            Starting => {
                assert_eq!(actions, [Spawn]);
                waits.push(0);
            }
            Backoff => {
                let [Sleep(delay)] = actions[..] else {
                    panic!("{actions:?}")
                };
                waits.push(delay.as_millis());
                assert_eq!(child.transition(E::BackoffElapsed, clock.at(i * 10 + 2)), [Spawn]);
            }
            Failed => assert_eq!(
                actions,
                [Log(Note::CrashLoop), Answer, CloseParked, Sleep(backoff::COOL_DOWN)]
            ),
            other => panic!("{other}"),
        }
    }
    assert_eq!(waits, [0, 100, 200, 400]);
    assert_eq!(child.state(), Failed);
    assert_eq!(child.restarts(), 4);
    // The cool-down is over: the supervisor lets go of the socket and starts it once more.
    assert_eq!(
        child.transition(E::BackoffElapsed, clock.at(60_000)),
        [StopAnswering, Spawn]
    );
    assert_eq!(child.restarts(), 5);
}

#[test]
fn a_stop_while_starting_stops_it_and_the_exit_leaves_it_stopped() {
    let (mut child, _) = drive(Restart::Always, &[E::Spawned]);
    let now = Instant::now();
    assert_eq!(child.transition(E::Stop, now), [Kill(SIGTERM), Grace(GRACE)]);
    // Its READY=1 was on its way: too late.
    assert_eq!(child.transition(E::Ready, now), []);
    assert_eq!(child.transition(E::ReadyTimeout, now), []);
    assert_eq!(
        child.transition(E::Exited { success: true }, now),
        [Answer, CloseParked]
    );
    assert_eq!(child.state(), Stopped);
}

#[test]
fn a_restart_while_in_backoff_starts_at_once_with_the_backoff_forgotten() {
    let (mut child, _) = drive(Restart::Always, &into(Backoff));
    let now = Instant::now() + Duration::from_secs(1);
    assert_eq!(child.transition(E::Restart, now), [Spawn]);
    // The stale backoff timer changes nothing.
    assert_eq!(child.transition(E::BackoffElapsed, now), []);
    // The next quick exit restarts at once again: the streak was reset.
    child.transition(E::Spawned, now);
    assert_eq!(child.transition(E::Exited { success: false }, now), [Spawn]);
}

#[test]
fn exits_while_stopping_follow_the_last_request() {
    let now = Instant::now();
    // restart: the exit starts it afresh.
    let (mut child, _) = drive(Restart::Always, &[E::Spawned, E::Ready, E::Restart]);
    assert_eq!(child.transition(E::Exited { success: false }, now), [Spawn]);
    // restart, then stop before it is gone: it stays stopped.
    let (mut child, _) = drive(Restart::Always, &[E::Spawned, E::Ready, E::Restart, E::Stop]);
    assert_eq!(
        child.transition(E::Exited { success: false }, now),
        [Answer, CloseParked]
    );
    assert_eq!(child.state(), Stopped);
    // stop, then start before it is gone: it comes back.
    let (mut child, _) = drive(Restart::Never, &[E::Spawned, E::Ready, E::Stop, E::Start]);
    assert_eq!(child.transition(E::Exited { success: true }, now), [Spawn]);
}

#[test]
fn a_watchdog_expiry_while_stopping_waits_for_the_grace() {
    let (mut child, _) = drive(Restart::Always, &into(Stopping));
    let now = Instant::now();
    assert_eq!(child.transition(E::WatchdogExpired, now), []);
    assert_eq!(
        child.transition(E::GraceElapsed, now),
        [Log(Note::Unyielding), Kill(SIGKILL)]
    );
    assert_eq!(
        child.transition(E::Exited { success: false }, now),
        [Answer, CloseParked]
    );
}

#[test]
fn a_hung_or_never_ready_child_is_restarted_even_if_it_exits_cleanly() {
    for (fault, signal) in [(E::WatchdogExpired, SIGKILL), (E::ReadyTimeout, SIGTERM)] {
        let (mut child, _) = drive(Restart::OnFailure, &[E::Spawned]);
        let now = Instant::now();
        assert!(child.transition(fault, now).contains(&Kill(signal)));
        assert_eq!(child.transition(E::Exited { success: true }, now), [Spawn], "{fault:?}");
    }
}

#[test]
fn the_policy_decides_after_an_exit_on_its_own() {
    let now = Instant::now();
    let cases = [
        (Restart::Always, true, vec![Spawn]),
        (Restart::Always, false, vec![Spawn]),
        (Restart::OnFailure, true, vec![Answer, CloseParked]),
        (Restart::OnFailure, false, vec![Spawn]),
        (Restart::Never, true, vec![Answer, CloseParked]),
        (Restart::Never, false, vec![Answer, CloseParked]),
    ];
    for (restart, success, expected) in cases {
        let (mut child, _) = drive(restart, &[E::Spawned, E::Ready]);
        let got = child.transition(E::Exited { success }, now);
        assert_eq!(got, expected, "{restart} after success={success}");
    }
}

#[test]
fn the_essential_child_is_never_parked_once_it_was_ready() {
    let clock = Clock(Instant::now());
    let (mut kernel, _) = Lifecycle::start(Restart::Always, true);
    kernel.transition(E::Spawned, clock.at(0));
    kernel.transition(E::Ready, clock.at(1));
    for i in 0..backoff::LOOP_FAILURES as u64 * 3 {
        kernel.transition(E::Exited { success: false }, clock.at(2 + i * 3));
        assert_ne!(kernel.state(), Failed, "after {i} exits");
        if kernel.state() == Backoff {
            kernel.transition(E::BackoffElapsed, clock.at(3 + i * 3));
        }
        kernel.transition(E::Spawned, clock.at(4 + i * 3));
    }
    // Before its first READY=1 it may still fail: `up` then ends with a clear error.
    let (kernel, _) = drive(Restart::Always, &into(Failed));
    assert_eq!(kernel.state(), Failed);
}

#[test]
fn a_stable_run_makes_the_next_exit_restart_at_once() {
    let clock = Clock(Instant::now());
    let (mut child, _) = drive(Restart::Always, &into(Backoff));
    child.transition(E::BackoffElapsed, clock.at(0));
    child.transition(E::Spawned, clock.at(1));
    let actions = child.transition(E::Exited { success: false }, clock.at(1) + backoff::STABLE);
    assert_eq!(actions, [Spawn]);
}

#[test]
fn a_restart_asks_for_a_hand_over_and_keeps_the_clients_parked() {
    let (mut child, _) = drive(Restart::Always, &into(Running));
    let now = Instant::now();
    assert_eq!(child.transition(E::Restart, now), [AskHandOver, Grace(GRACE)]);
    assert_eq!(child.transition(E::Exited { success: true }, now), [Spawn]);
    // One that cannot be asked gets SIGTERM, within the same grace.
    let (mut child, _) = drive(Restart::Always, &into(Running));
    assert_eq!(child.transition(E::Restart, now), [AskHandOver, Grace(GRACE)]);
    assert_eq!(child.transition(E::AskFailed, now), [Kill(SIGTERM)]);
    assert_eq!(child.transition(E::Exited { success: false }, now), [Spawn]);
}

#[test]
fn a_stop_sends_sigterm_and_closes_the_parked_connections_once_it_exited() {
    let (mut child, _) = drive(Restart::Always, &into(Running));
    let now = Instant::now();
    assert_eq!(child.transition(E::Stop, now), [Kill(SIGTERM), Grace(GRACE)]);
    assert_eq!(
        child.transition(E::Exited { success: true }, now),
        [Answer, CloseParked]
    );
    // A restart while it was stopping brings it back, clients kept.
    let (mut child, _) = drive(Restart::Always, &into(Stopping));
    assert_eq!(child.transition(E::Restart, now), []);
    assert_eq!(child.transition(E::Exited { success: true }, now), [Spawn]);
}

#[test]
fn a_hand_over_to_a_successor_stays_stopped_and_never_closes_the_parked_connections() {
    let now = Instant::now();
    let (mut child, _) = drive(Restart::Always, &into(Running));
    assert_eq!(child.transition(E::HandOver, now), [AskHandOver, Grace(GRACE)]);
    assert_eq!(child.transition(E::Exited { success: true }, now), [Answer]);
    assert_eq!(child.state(), Stopped);
    // The stop that ends its handle changes nothing.
    assert_eq!(child.transition(E::Stop, now), []);
    // A plain stop under way becomes one for the successor.
    let (mut child, _) = drive(Restart::Always, &into(Stopping));
    assert_eq!(child.transition(E::HandOver, now), []);
    assert_eq!(child.transition(E::Exited { success: true }, now), [Answer]);
    // A child waiting out its backoff stops at once, its clients kept for the successor.
    let (mut child, _) = drive(Restart::Always, &into(Backoff));
    assert_eq!(child.transition(E::HandOver, now), [Answer]);
}
