//! Writing frames: each message appends one whole frame (length included) to a buffer.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

impl Upstream {
    /// Appends this message as one whole frame (length included).
    pub fn encode(&self, dst: &mut BytesMut) {
        frame(dst, |dst| match self {
            Upstream::Hello {
                version,
                frontend,
                instance,
                first,
                sessions,
                resume,
            } => {
                dst.put_u8(HELLO);
                dst.put_slice(MAGIC);
                dst.put_u16(*version);
                put_str(dst, frontend);
                dst.put_u64(*instance);
                dst.put_u64(*first);
                put_len(dst, sessions.len());
                for (session, login) in sessions {
                    dst.put_u64(*session);
                    put_login(dst, login.as_ref());
                }
                match resume {
                    None => dst.put_u8(0),
                    Some((epoch, seq)) => {
                        dst.put_u8(1);
                        dst.put_u64(*epoch);
                        dst.put_u64(*seq);
                    }
                }
            }
            Upstream::Open { session } => {
                dst.put_u8(OPEN);
                dst.put_u64(*session);
            }
            Upstream::Line { session, line } => {
                dst.put_u8(LINE);
                dst.put_u64(*session);
                put_str(dst, line);
            }
            Upstream::Closed { session } => {
                dst.put_u8(CLOSED);
                dst.put_u64(*session);
            }
            Upstream::Census => dst.put_u8(CENSUS),
            Upstream::Heartbeat => dst.put_u8(HEARTBEAT_UP),
            Upstream::Bye => dst.put_u8(BYE),
        });
    }
}

impl Downstream {
    /// Appends this message as one whole frame (length included).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Downstream::Deliver { to, origin, event } => {
                let only = match to {
                    To::LoggedIn => None,
                    To::Only(sessions) => Some(sessions.as_slice()),
                };
                encode_deliver(dst, only, *origin, &encode_event(event))
            }
            other => frame(dst, |dst| match other {
                Downstream::Welcome { version } => {
                    dst.put_u8(WELCOME);
                    dst.put_slice(MAGIC);
                    dst.put_u16(*version);
                }
                Downstream::Named { session, login } => {
                    dst.put_u8(NAMED);
                    dst.put_u64(*session);
                    put_login(dst, login.as_ref());
                }
                Downstream::Close { session } => {
                    dst.put_u8(CLOSE);
                    dst.put_u64(*session);
                }
                Downstream::Census { frontends, nodes } => {
                    dst.put_u8(CENSUS_REPLY);
                    // No nodes, no list: a census an earlier build reads too.
                    let lists = if nodes.is_empty() {
                        &[frontends][..]
                    } else {
                        &[frontends, nodes]
                    };
                    for list in lists {
                        put_len(dst, list.len());
                        for (name, count) in *list {
                            put_str(dst, name);
                            dst.put_u64(*count);
                        }
                    }
                }
                Downstream::Ack { seq } => {
                    dst.put_u8(ACK);
                    dst.put_u64(*seq);
                }
                Downstream::Heartbeat => dst.put_u8(HEARTBEAT_DOWN),
                Downstream::Sync { epoch, next, applied } => {
                    dst.put_u8(SYNC);
                    dst.put_u64(*epoch);
                    dst.put_u64(*next);
                    dst.put_u64(*applied);
                }
                Downstream::Deliver { .. } => unreachable!("handled above"),
            }),
        }
    }
}

/// Encodes an event once, to be framed for each frontend by [`encode_deliver`].
pub fn encode_event(event: &Event) -> Bytes {
    let mut dst = BytesMut::new();
    match event {
        Event::Login { name } => {
            dst.put_u8(1);
            put_str(&mut dst, name);
        }
        Event::Logout { name } => {
            dst.put_u8(2);
            put_str(&mut dst, name);
        }
        Event::Private { time, from, to, text } => {
            dst.put_u8(3);
            for s in [time, from, to, text] {
                put_str(&mut dst, s);
            }
        }
        Event::Public { time, from, text } => {
            dst.put_u8(4);
            for s in [time, from, text] {
                put_str(&mut dst, s);
            }
        }
        Event::WhoAmI { name, raw } => {
            dst.put_u8(5);
            dst.put_u8(u8::from(*raw));
            put_str(&mut dst, name);
        }
        Event::UserList { names, raw } => {
            dst.put_u8(6);
            dst.put_u8(u8::from(*raw));
            put_len(&mut dst, names.len());
            for name in names {
                put_str(&mut dst, name);
            }
        }
        Event::Help => dst.put_u8(7),
        Event::Greeting { motd } => {
            dst.put_u8(9);
            put_str(&mut dst, motd);
        }
        Event::LineLost => dst.put_u8(10),
        Event::Error(error) => {
            dst.put_u8(8);
            dst.put_u8(error_code(error));
            if let ChatError::NotFound(name) = error {
                put_str(&mut dst, name);
            }
        }
    }
    dst.freeze()
}

/// Appends a Deliver frame for one frontend: its recipients (`None`: every logged-in session),
/// the origin of the event, and the event from [`encode_event`].
pub fn encode_deliver(dst: &mut BytesMut, to: Option<&[SessionId]>, origin: Option<Origin>, event: &[u8]) {
    frame(dst, |dst| {
        dst.put_u8(DELIVER);
        let origin = origin.unwrap_or(Origin { instance: 0, seq: 0 });
        dst.put_u64(origin.instance);
        dst.put_u64(origin.seq);
        match to {
            None => dst.put_u32(LOGGED_IN),
            Some(to) => {
                put_len(dst, to.len());
                for session in to {
                    dst.put_u64(*session);
                }
            }
        }
        dst.put_slice(event);
    });
}

pub(super) fn error_code(error: &ChatError) -> u8 {
    let same = |known: &ChatError| match (known, error) {
        (ChatError::NotFound(_), ChatError::NotFound(_)) => true,
        (known, error) => known == error,
    };
    ERRORS
        .iter()
        .find(|(_, known)| same(known))
        .map(|(code, _)| *code)
        .expect("every error has a code")
}

/// Writes a frame whose body `body` appends, then fills in its length.
fn frame(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let at = dst.len();
    dst.put_u32(0);
    body(dst);
    let len = u32::try_from(dst.len() - at - 4).expect("frame under 4 GiB");
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_len(dst: &mut BytesMut, len: usize) {
    dst.put_u32(u32::try_from(len).expect("count under 4 G"));
}

fn put_str(dst: &mut BytesMut, s: &str) {
    put_len(dst, s.len());
    dst.put_slice(s.as_bytes());
}

fn put_login(dst: &mut BytesMut, login: Option<&Login>) {
    match login {
        None => dst.put_u8(0),
        Some(Login { name, seq }) => {
            dst.put_u8(1);
            put_str(dst, name);
            dst.put_u64(*seq);
        }
    }
}
