//! Each local session's frames, in order.
//!
//! Invariant: a session's frames finish in the order they came. A line for Redis goes at once
//! (several of one session may be on their way: Redis runs them in order) unless an answer made
//! here is before it; what is shown to the session (an answer made here, a refusal) waits until
//! every frame before it finished and the replica has read the session's own latest entry, so
//! that `login ann` then `whoami` says `ann`, and no answer overtakes an earlier line's effect.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::super::entry::Id;
use super::super::scripts::{self, Call, Frame, Refusal, Reply};
use super::requests::{Line, Made};
use super::{Emitted, Member};
use crate::chat::command::{self, Command};
use crate::chat::{ChatError, Event, FrontendId, SessionKey};

/// Every local session's queue, and which sessions wait for which entry.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    queues: HashMap<SessionKey, Queue>,
    /// Local sessions that ended (or whose frontend is gone): forgotten once logged out.
    ending: HashSet<SessionKey>,
    /// Sessions whose front frame waits for the replica to reach an entry.
    waiters: BTreeMap<Id, HashSet<SessionKey>>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    /// The entry of this session's latest action: what is shown waits until the replica has
    /// applied it.
    after: Option<Id>,
    /// Its `logout` went through, or the session ended: nothing more is shown, as the embedded
    /// kernel ignores what follows.
    closing: bool,
}

/// One frame of a session, in its queue.
#[derive(Debug)]
struct Item {
    /// The frontend's frame (its number), to mark done.
    frame: (FrontendId, u64),
    work: Work,
}

/// Where a frame of a session is.
#[derive(Debug)]
pub(super) enum Work {
    /// Answered from the replica once at the front: the line.
    Local(String),
    /// A script for this line, deferred until the answer made here before it is out.
    Deferred(Made),
    /// Its script is on its way (request id).
    Sent(u64),
    /// Its script answered; this is shown (if anything) once at the front.
    Answered(Option<Event>),
}

/// What a session's queue can do next.
#[derive(Debug, PartialEq)]
pub(super) enum Next {
    /// Nothing for now: its front frame waits for its script, or for the replica.
    Wait,
    /// Its queue is empty; `ended`: the session ended and the replica has its latest entry.
    Empty { ended: bool },
    /// Its front frame finished: it is done once `show` (if anything) is out.
    Finished {
        frame: (FrontendId, u64),
        show: Option<Show>,
    },
}

/// What a finished frame shows its session.
#[derive(Debug, PartialEq)]
pub(super) enum Show {
    /// The replica answers the line alone: `whoami`, `userlist`, `help`, a syntax error.
    Local(String),
    /// A script's refusal, or `server busy`.
    Answer(Event),
}

impl Sessions {
    /// Whether `key`'s later lines are ignored.
    pub(super) fn closing(&self, key: SessionKey) -> bool {
        self.queues.get(&key).is_some_and(|q| q.closing)
    }

    /// Whether an answer made here is in `key`'s queue: a script must wait behind it.
    pub(super) fn behind_local(&self, key: SessionKey) -> bool {
        self.queues
            .get(&key)
            .is_some_and(|q| q.items.iter().any(|i| matches!(i.work, Work::Local(_))))
    }

    /// Whether `key` has frames not finished.
    pub(super) fn queued(&self, key: SessionKey) -> bool {
        self.queues.get(&key).is_some_and(|q| !q.items.is_empty())
    }

    pub(super) fn push(&mut self, key: SessionKey, frame: (FrontendId, u64), work: Work) {
        let queue = self.queues.entry(key).or_default();
        queue.items.push_back(Item { frame, work });
    }

    /// `key` ended (frame `frame`), its logout on its way as request `id`: nothing more is shown.
    pub(super) fn close(&mut self, key: SessionKey, frame: (FrontendId, u64), id: u64) {
        self.end(key);
        let queue = self.queues.entry(key).or_default();
        queue.closing = true;
        queue.items.push_back(Item {
            frame,
            work: Work::Sent(id),
        });
    }

    /// `key`'s `logout` went through: what follows is ignored.
    pub(super) fn logged_out(&mut self, key: SessionKey) {
        if let Some(queue) = self.queues.get_mut(&key) {
            queue.closing = true;
        }
    }

    /// Request `id` of `key` answered: `show` is shown in its place; `appended`, the entry it
    /// appended, is what the session's later answers wait for.
    pub(super) fn answered(&mut self, key: SessionKey, id: u64, show: Option<Event>, appended: Option<Id>) {
        let Some(queue) = self.queues.get_mut(&key) else { return };
        if appended.is_some() {
            queue.after = appended;
        }
        if let Some(item) = queue
            .items
            .iter_mut()
            .find(|i| matches!(i.work, Work::Sent(s) if s == id))
        {
            item.work = Work::Answered(show);
        }
    }

    /// Sends, through `send` (which returns the request's id), the scripts of `key`'s queue that
    /// no answer made here is before any more.
    pub(super) fn send_deferred(&mut self, key: SessionKey, mut send: impl FnMut(Made) -> u64) {
        let Some(queue) = self.queues.get_mut(&key) else { return };
        for item in &mut queue.items {
            match &item.work {
                Work::Local(_) => break,
                Work::Deferred(_) => {
                    if let Work::Deferred(made) = std::mem::replace(&mut item.work, Work::Answered(None)) {
                        item.work = Work::Sent(send(made));
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes `key`'s front frame if it finished, the replica having applied up to `applied`;
    /// if it waits for the replica, `key` is among the [`reached`](Self::reached) ones later.
    pub(super) fn next(&mut self, key: SessionKey, applied: Id) -> Next {
        let Some(queue) = self.queues.get_mut(&key) else {
            return Next::Wait;
        };
        let through = queue.after.is_none_or(|after| applied >= after);
        let Some(front) = queue.items.front() else {
            return Next::Empty {
                ended: through && self.ending.contains(&key),
            };
        };
        let shows = matches!(front.work, Work::Local(_) | Work::Answered(Some(_)));
        let finished = match front.work {
            Work::Sent(_) | Work::Deferred(_) => false,
            _ => !shows || through,
        };
        if !finished {
            if shows && let Some(after) = queue.after {
                self.waiters.entry(after).or_default().insert(key);
            }
            return Next::Wait;
        }
        let item = queue.items.pop_front().expect("a front");
        let show = match item.work {
            _ if queue.closing => None,
            Work::Local(line) => Some(Show::Local(line)),
            Work::Answered(Some(event)) => Some(Show::Answer(event)),
            _ => None,
        };
        Next::Finished {
            frame: item.frame,
            show,
        }
    }

    /// Sessions that waited for the replica to reach an entry up to `id`, those of the earliest
    /// entry first (`None` once there are none).
    pub(super) fn reached(&mut self, id: Id) -> Option<HashSet<SessionKey>> {
        let (at, _) = self.waiters.first_key_value()?;
        if *at > id {
            return None;
        }
        self.waiters.pop_first().map(|(_, keys)| keys)
    }

    /// `key` ended: it is forgotten once logged out.
    pub(super) fn end(&mut self, key: SessionKey) {
        self.ending.insert(key);
    }

    pub(super) fn ended(&self, key: SessionKey) -> bool {
        self.ending.contains(&key)
    }

    /// Drops `key`'s queue (its frames will not be acknowledged).
    pub(super) fn drop_queue(&mut self, key: SessionKey) {
        self.queues.remove(&key);
    }

    pub(super) fn forget(&mut self, key: SessionKey) {
        self.queues.remove(&key);
        self.ending.remove(&key);
    }

    /// The sessions of frontend connection `before` are on connection `after` now.
    pub(super) fn move_frontend(&mut self, before: FrontendId, after: FrontendId) {
        let moved: Vec<SessionKey> = self.queues.keys().filter(|k| k.frontend == before).copied().collect();
        for key in moved {
            let queue = self.queues.remove(&key).expect("listed");
            self.queues.insert(SessionKey { frontend: after, ..key }, queue);
        }
        self.ending = self
            .ending
            .drain()
            .map(|k| {
                if k.frontend == before {
                    SessionKey { frontend: after, ..k }
                } else {
                    k
                }
            })
            .collect();
    }
}

impl Member {
    /// Request `id`, for `line`, was answered.
    pub(super) fn line_answered(&mut self, id: u64, line: Line, reply: Option<Reply>, out: &mut Emitted) {
        let Line { key, typed, logout } = line;
        if logout && matches!(reply, Some(Reply::Ok(_) | Reply::Dup)) {
            // Logged out (or already, for a frame sent again): what follows is ignored.
            self.sessions.logged_out(key);
        }
        let (show, appended) = shown(reply, typed);
        self.sessions.answered(key, id, show, appended);
        self.advance(key, out);
    }

    /// Handles `key`'s queue from the front as far as it can: scripts deferred behind an answer
    /// made here go once it is out; answers go once the replica has the session's latest entry.
    pub(super) fn advance(&mut self, key: SessionKey, out: &mut Emitted) {
        loop {
            let holds = self.healing.holds();
            self.sessions.send_deferred(key, |made| self.requests.make(made, holds));
            match self.sessions.next(key, self.stream.applied()) {
                Next::Wait => return,
                Next::Empty { ended } => {
                    // An ended session goes once its last entry (its logout, if any) is applied.
                    if ended && self.chat.login_of(key).is_none() {
                        self.forget(key);
                    }
                    return;
                }
                Next::Finished { frame, show } => {
                    let mut caused = Vec::new();
                    match show {
                        Some(Show::Local(line)) => {
                            let now = crate::chat::Now { time: "", micros: 0 };
                            self.chat.input(key, &line, now, &mut caused);
                        }
                        Some(Show::Answer(event)) => self.chat.answer(key, event, &mut caused),
                        None => {}
                    }
                    if !caused.is_empty() {
                        out.push((None, caused));
                    }
                    self.acks.done(frame);
                }
            }
        }
    }
}

/// What Redis is asked for a session's line (`None`: the replica answers it alone), and the name
/// typed for a `msg` (to say who was not found).
pub(super) fn asked(line: &str, frame: Frame<'_>, time: &str) -> Option<(Call, Option<String>)> {
    Some(match command::parse(line) {
        Some(Ok(Command::Login { name })) => (Call::login(frame, name), None),
        Some(Ok(Command::Logout)) => (Call::logout(frame), None),
        Some(Ok(Command::Msg { name, text })) => (Call::say(frame, time, text, Some(name)), Some(name.to_string())),
        Some(Ok(Command::MsgAll { text })) => (Call::say(frame, time, text, None), None),
        _ => return None,
    })
}

/// What a session is shown for its line's script's answer, and the entry it appended.
pub(super) fn shown(reply: Option<Reply>, typed: Option<String>) -> (Option<Event>, Option<Id>) {
    let error = match reply {
        Some(Reply::Ok(fields)) => return (None, scripts::appended(&fields)),
        Some(Reply::Dup) => return (None, None),
        Some(Reply::Refused(why)) => match why {
            Refusal::Already => ChatError::AlreadyLogin,
            Refusal::Invalid => ChatError::InvalidUsername,
            Refusal::Taken => ChatError::UsernameTaken,
            Refusal::First => ChatError::FirstLogin,
            Refusal::NotFound => ChatError::NotFound(typed.unwrap_or_default()),
            Refusal::Unknown(_) => ChatError::ServerBusy,
        },
        _ => ChatError::ServerBusy,
    };
    (Some(Event::Error(error)), None)
}

#[cfg(test)]
mod tests;
