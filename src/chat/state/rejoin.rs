//! A frontend's sessions when its connection ends and when it says hello again: logged out at
//! once (the frontend is gone), rebuilt from a hello (after a kernel restart), carried over to a
//! new connection (a frontend the kernel let go of came back), or restored logged out (it came
//! back too late).

use std::collections::HashMap;

use super::{Chat, FrontendId, Login, Output, SessionId, SessionKey, reply};
use crate::chat::event::{ChatError, Event};
use crate::chat::name::{self, Keys};

impl Chat {
    /// A frontend went away with all its sessions: each of its users is logged out once, in login
    /// order, and every remaining user is told once per user.
    pub fn frontend_gone(&mut self, frontend: FrontendId, out: &mut Vec<Output>) {
        self.sessions.retain(|key, _| key.frontend != frontend);
        let gone: Vec<u64> = self
            .online
            .iter()
            .filter(|(_, user)| user.session.frontend == frontend)
            .map(|(seq, _)| *seq)
            .collect();
        // Remove them all before telling anyone, so no logout is sent to a session that is gone.
        let names: Vec<String> = gone
            .iter()
            .map(|seq| self.go_offline(*seq).expect("listed above"))
            .collect();
        for name in names {
            out.push(Output::Broadcast {
                event: Event::Logout { name },
                to: self.everyone(),
            });
        }
    }

    /// Rebuilds a frontend's sessions from its hello after a kernel restart.
    ///
    /// Nobody is told of restored logins: they were already announced. If two names clash (the
    /// same up to case and look-alikes, as at login), the earlier login (lower `seq`) keeps its
    /// name and the other session is told `Username already taken!` and left logged out.
    pub fn restore(&mut self, frontend: FrontendId, sessions: Vec<(SessionId, Option<Login>)>, out: &mut Vec<Output>) {
        for (session, login) in sessions {
            let key = SessionKey { frontend, session };
            if !self.open(key) {
                continue;
            }
            let Some(Login { name, seq }) = login else {
                continue;
            };
            if !name::is_valid(&name) {
                out.push(Output::Named { key, login: None });
                reply(out, key, Event::Error(ChatError::InvalidUsername));
                continue;
            }
            let seq = self.free_seq(seq);
            let keys = Keys::of(&name);
            // One name's two keys may be held by two users.
            let mut held: Vec<u64> = keys.iter().filter_map(|k| self.holders.get(k).copied()).collect();
            held.sort_unstable();
            held.dedup();
            if held.first().is_some_and(|&first| first <= seq) {
                out.push(Output::Named { key, login: None });
                reply(out, key, Event::Error(ChatError::UsernameTaken));
                continue;
            }
            for later in held {
                let loser = self.online[&later].session;
                self.logout(loser, out);
                reply(out, loser, Event::Error(ChatError::UsernameTaken));
            }
            self.last_seq = self.last_seq.max(seq);
            self.bind(key, name, keys, seq, out);
        }
    }

    /// A frontend the kernel let go of (it stopped reading, or went silent) says hello again on a
    /// new connection: its sessions move from `old` to `new` as they were, and nobody is told.
    ///
    /// Where the hello and the kernel disagree (the frontend missed frames when it was let go),
    /// the kernel's record wins: a session the hello no longer lists is closed (a logged-in user
    /// logged out, for everyone, once); a login the frontend has wrong is corrected with a
    /// `Named`; a session the kernel does not know is restored as after a kernel restart.
    pub fn reattach(
        &mut self,
        old: FrontendId,
        new: FrontendId,
        sessions: Vec<(SessionId, Option<Login>)>,
        out: &mut Vec<Output>,
    ) {
        self.move_frontend(old, new);
        let listed: HashMap<SessionId, ()> = sessions.iter().map(|(id, _)| (*id, ())).collect();
        let mut gone: Vec<SessionKey> = self
            .sessions
            .keys()
            .filter(|k| k.frontend == new && !listed.contains_key(&k.session))
            .copied()
            .collect();
        gone.sort_unstable();
        for key in gone {
            self.close(key, out);
        }
        let mut unknown = Vec::new();
        for (session, login) in sessions {
            let key = SessionKey { frontend: new, session };
            let Some(known) = self.sessions.get(&key) else {
                unknown.push((session, login));
                continue;
            };
            let kernel = known.login.map(|seq| Login {
                name: self.online[&seq].name.clone(),
                seq,
            });
            if kernel != login {
                out.push(Output::Named { key, login: kernel });
            }
        }
        self.restore(new, unknown, out);
    }

    /// Moves every session of frontend `old` to `new`, logged in or not, as they are; nobody is
    /// told.
    pub fn move_frontend(&mut self, old: FrontendId, new: FrontendId) {
        if old == new {
            return;
        }
        let moved: Vec<SessionKey> = self.sessions.keys().filter(|k| k.frontend == old).copied().collect();
        for key in moved {
            let session = self.sessions.remove(&key).expect("listed above");
            self.sessions.insert(SessionKey { frontend: new, ..key }, session);
        }
        for user in self.online.values_mut() {
            if user.session.frontend == old {
                user.session.frontend = new;
            }
        }
        if let Some(count) = self.online_on.remove(&old) {
            *self.online_on.entry(new).or_default() += count;
        }
    }

    /// Restores a frontend whose sessions were logged out while it was away (it hung past its
    /// grace, then came back): the sessions in `logged_out` are restored logged out, and each
    /// user is told the logout everyone else saw; the rest as [`restore`](Self::restore) does.
    pub fn restore_after_logout(
        &mut self,
        frontend: FrontendId,
        sessions: Vec<(SessionId, Option<Login>)>,
        logged_out: &std::collections::HashSet<SessionId>,
        out: &mut Vec<Output>,
    ) {
        let mut told = Vec::new();
        let sessions = sessions
            .into_iter()
            .map(|(session, login)| match login {
                Some(login) if logged_out.contains(&session) => {
                    told.push((session, login.name));
                    (session, None)
                }
                other => (session, other),
            })
            .collect();
        self.restore(frontend, sessions, out);
        for (session, name) in told {
            let key = SessionKey { frontend, session };
            out.push(Output::Named { key, login: None });
            reply(out, key, Event::Logout { name });
        }
    }
}

#[cfg(test)]
mod tests;
