//! The chat state as a replica: the state a cluster member keeps of the whole cluster's chat,
//! fed by the events every node reads from Redis in one order (see [`crate::cluster`]). Redis has
//! checked each event already (a name is free, a target exists), so these apply them as they
//! come; what they cause is the same [`Output`]s the embedded kernel makes. A session of another
//! node is known only while it is logged in.

use super::{Chat, Login, Output, SessionKey, add, reply};
use crate::chat::event::Event;
use crate::chat::name::Keys;
use crate::chat::{FrontendId, SessionId};

impl Chat {
    /// `key` logged in as `name` (login order `seq`); everyone is told if `announce`. A user
    /// holding one of its name's keys in this replica is stale (the stream says otherwise) and
    /// goes without a word. Logged in already as that name, it only takes its new place in the
    /// login order (nobody here saw it leave), if that changed.
    pub fn joined(&mut self, key: SessionKey, name: &str, seq: u64, announce: bool, out: &mut Vec<Output>) {
        self.open(key);
        let mut announce = announce;
        if let Some(now) = self.login_of(key) {
            if now.name == name && now.seq == seq {
                return;
            }
            announce &= now.name != name;
            self.sessions.get_mut(&key).expect("logged in").login = None;
            self.go_offline(now.seq);
        }
        let keys = Keys::of(name);
        let stale: Vec<u64> = keys.iter().filter_map(|k| self.holders.get(k).copied()).collect();
        for held in stale {
            if let Some(user) = self.online.get(&held) {
                let holder = user.session;
                self.left(holder, false, out);
            }
        }
        let seq = self.free_seq(seq);
        self.last_seq = self.last_seq.max(seq);
        self.bind(key, name.to_string(), keys, seq, out);
        if announce {
            out.push(Output::Broadcast {
                event: Event::Login { name: name.to_string() },
                to: self.everyone(),
            });
        }
    }

    /// `key` logged out; everyone left is told if `announce`. Returns its name, if it was logged
    /// in.
    pub fn left(&mut self, key: SessionKey, announce: bool, out: &mut Vec<Output>) -> Option<String> {
        let seq = self.sessions.get_mut(&key)?.login.take()?;
        let name = self.go_offline(seq)?;
        out.push(Output::Named { key, login: None });
        if announce {
            out.push(Output::Broadcast {
                event: Event::Logout { name: name.clone() },
                to: self.everyone(),
            });
        }
        Some(name)
    }

    /// Forgets a session without a word (it ended, or, of another node, logged out).
    pub fn forget(&mut self, key: SessionKey) {
        if let Some(seq) = self.sessions.get(&key).and_then(|s| s.login) {
            self.go_offline(seq);
        }
        self.sessions.remove(&key);
    }

    pub fn has_session(&self, key: SessionKey) -> bool {
        self.sessions.contains_key(&key)
    }

    /// The session's login, if it is logged in.
    pub fn login_of(&self, key: SessionKey) -> Option<Login> {
        let seq = self.sessions.get(&key)?.login?;
        Some(Login {
            name: self.online[&seq].name.clone(),
            seq,
        })
    }

    /// The logged-in sessions of `frontend` and their logins, in login order.
    pub fn logins_on(&self, frontend: FrontendId) -> Vec<(SessionId, Login)> {
        self.online
            .iter()
            .filter(|(_, user)| user.session.frontend == frontend)
            .map(|(seq, user)| {
                let login = Login {
                    name: user.name.clone(),
                    seq: *seq,
                };
                (user.session.session, login)
            })
            .collect()
    }

    /// How many users each frontend has, by frontend.
    pub fn users_by_frontend(&self) -> impl Iterator<Item = (FrontendId, usize)> + '_ {
        self.online_on.iter().map(|(f, n)| (*f, *n))
    }

    /// Shows `event` to every logged-in session (a `msgall`).
    pub fn announce(&self, event: Event, out: &mut Vec<Output>) {
        out.push(Output::Broadcast {
            event,
            to: self.everyone(),
        });
    }

    /// Shows `event` to each of `keys` once (a `msg`: its sender and its target).
    pub fn tell(&self, keys: &[SessionKey], event: Event, out: &mut Vec<Output>) {
        let mut to = Vec::new();
        for key in keys {
            let seen = to
                .iter()
                .any(|(f, s): &(FrontendId, Vec<SessionId>)| *f == key.frontend && s.contains(&key.session));
            if !seen && self.sessions.contains_key(key) {
                add(&mut to, *key);
            }
        }
        if !to.is_empty() {
            out.push(Output::Deliver { event, to });
        }
    }

    /// Shows `event` to `key` alone (a refusal the cluster answered).
    pub fn answer(&self, key: SessionKey, event: Event, out: &mut Vec<Output>) {
        reply(out, key, event);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Harness, key};
    use super::*;

    #[test]
    fn the_streams_logins_and_logouts_are_applied_and_announced() {
        let mut h = Harness::new();
        h.open(key(1, 1));
        h.chat.joined(key(1, 1), "ann", 10, true, &mut h.out);
        h.chat.joined(key(9, 7), "bob", 11, true, &mut h.out);
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["ann", "bob"]);
        let got = h.deliveries();
        assert!(
            got.contains(&(key(1, 1), "[SYSTEM INFO] - [bob] login to chat.".into())),
            "{got:?}"
        );
        // Again, silently: nothing changes.
        h.out.clear();
        h.chat.joined(key(9, 7), "bob", 11, true, &mut h.out);
        assert!(h.out.is_empty());
        assert_eq!(h.chat.login_of(key(9, 7)).map(|l| l.seq), Some(11));
        // Asserted again with a new place in the login order: it moves there, quietly.
        h.chat.joined(key(9, 7), "bob", 12, true, &mut h.out);
        assert!(h.deliveries().is_empty());
        assert_eq!(h.chat.login_of(key(9, 7)).map(|l| l.seq), Some(12));
        assert_eq!(h.chat.logins_on(9).len(), 1);
        assert_eq!(h.chat.left(key(9, 7), true, &mut h.out), Some("bob".into()));
        let got = h.deliveries();
        assert!(
            got.contains(&(key(1, 1), "[SYSTEM INFO] - [bob] logout from chat.".into())),
            "{got:?}"
        );
        h.chat.forget(key(9, 7));
        assert!(!h.chat.has_session(key(9, 7)));
    }

    #[test]
    fn a_stale_holder_of_the_name_gives_way_without_a_word() {
        let mut h = Harness::new();
        h.chat.joined(key(9, 1), "Ann", 10, false, &mut h.out);
        h.out.clear();
        h.chat.joined(key(8, 1), "ann", 12, true, &mut h.out);
        assert_eq!(h.chat.names().collect::<Vec<_>>(), ["ann"]);
        assert_eq!(h.chat.login_of(key(9, 1)), None);
    }

    #[test]
    fn a_message_reaches_its_sender_and_target_once() {
        let mut h = Harness::new();
        h.open(key(1, 1));
        h.chat.joined(key(1, 1), "ann", 10, false, &mut h.out);
        h.out.clear();
        let event = Event::Public {
            time: "10:00:00".into(),
            from: "ann".into(),
            text: "hi".into(),
        };
        h.chat.tell(&[key(1, 1), key(1, 1), key(5, 5)], event, &mut h.out);
        assert_eq!(h.deliveries().len(), 1, "once, and not to an unknown session");
    }
}
