//! Reading frame bodies: every length and count is checked against the bytes actually present
//! before anything is allocated, so a hostile frame costs at most its own size.

use super::*;

impl Upstream {
    /// Decodes one frame body (without its length).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(body);
        let message = match r.u8()? {
            HELLO => {
                r.magic()?;
                let version = r.u16()?;
                let frontend = r.string()?;
                let instance = r.u64()?;
                let first = r.u64()?;
                // A session is at least 9 bytes: its id and a login flag.
                let count = r.count(9)?;
                let mut sessions = Vec::with_capacity(count);
                for _ in 0..count {
                    sessions.push((r.u64()?, r.login()?));
                }
                let resume = match r.u8()? {
                    0 => None,
                    _ => Some((r.u64()?, r.u64()?)),
                };
                Upstream::Hello {
                    version,
                    frontend,
                    instance,
                    first,
                    sessions,
                    resume,
                }
            }
            OPEN => Upstream::Open { session: r.u64()? },
            LINE => Upstream::Line {
                session: r.u64()?,
                line: r.string()?,
            },
            CLOSED => Upstream::Closed { session: r.u64()? },
            CENSUS => Upstream::Census,
            HEARTBEAT_UP => Upstream::Heartbeat,
            BYE => Upstream::Bye,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "frontend frame",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(message)
    }
}

impl Downstream {
    /// Decodes one frame body (without its length).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(body);
        let message = match r.u8()? {
            WELCOME => {
                r.magic()?;
                Downstream::Welcome { version: r.u16()? }
            }
            DELIVER => {
                let origin = match (r.u64()?, r.u64()?) {
                    (0, _) => None,
                    (instance, seq) => Some(Origin { instance, seq }),
                };
                let to = if r.0.get(..4) == Some(&LOGGED_IN.to_be_bytes()) {
                    r.u32()?;
                    To::LoggedIn
                } else {
                    let count = r.count(8)?;
                    let mut to = Vec::with_capacity(count);
                    for _ in 0..count {
                        to.push(r.u64()?);
                    }
                    To::Only(to)
                };
                Downstream::Deliver {
                    to,
                    origin,
                    event: r.event()?,
                }
            }
            NAMED => Downstream::Named {
                session: r.u64()?,
                login: r.login()?,
            },
            CLOSE => Downstream::Close { session: r.u64()? },
            CENSUS_REPLY => {
                let frontends = r.census()?;
                // An older kernel's census ends after the frontends.
                let nodes = if r.0.is_empty() { Vec::new() } else { r.census()? };
                Downstream::Census { frontends, nodes }
            }
            ACK => Downstream::Ack { seq: r.u64()? },
            HEARTBEAT_DOWN => Downstream::Heartbeat,
            SYNC => Downstream::Sync {
                epoch: r.u64()?,
                next: r.u64()?,
                applied: r.u64()?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "kernel frame",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(message)
    }
}

/// A cursor over a frame body that never reads past its end.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::UnknownTag { what: "flag", tag }),
        }
    }

    /// A count of items each at least `min_size` bytes, checked against what is left, so that a
    /// forged count cannot make the decoder allocate more than the frame's own size.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count > self.0.len() / min_size {
            return Err(DecodeError::Truncated);
        }
        Ok(count)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8)
    }

    fn magic(&mut self) -> Result<(), DecodeError> {
        if self.take(MAGIC.len())? == MAGIC {
            Ok(())
        } else {
            Err(DecodeError::BadMagic)
        }
    }

    fn login(&mut self) -> Result<Option<Login>, DecodeError> {
        Ok(if self.bool()? {
            Some(Login {
                name: self.string()?,
                seq: self.u64()?,
            })
        } else {
            None
        })
    }

    pub(super) fn event(&mut self) -> Result<Event, DecodeError> {
        Ok(match self.u8()? {
            1 => Event::Login { name: self.string()? },
            2 => Event::Logout { name: self.string()? },
            3 => Event::Private {
                time: self.string()?,
                from: self.string()?,
                to: self.string()?,
                text: self.string()?,
            },
            4 => Event::Public {
                time: self.string()?,
                from: self.string()?,
                text: self.string()?,
            },
            5 => {
                let raw = self.bool()?;
                Event::WhoAmI {
                    name: self.string()?,
                    raw,
                }
            }
            6 => {
                let raw = self.bool()?;
                let count = self.count(4)?;
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    names.push(self.string()?);
                }
                Event::UserList { names, raw }
            }
            7 => Event::Help,
            8 => {
                let code = self.u8()?;
                let error = ERRORS
                    .iter()
                    .find(|(known, _)| *known == code)
                    .map(|(_, error)| error.clone())
                    .ok_or(DecodeError::UnknownTag {
                        what: "error",
                        tag: code,
                    })?;
                Event::Error(match error {
                    ChatError::NotFound(_) => ChatError::NotFound(self.string()?),
                    other => other,
                })
            }
            9 => Event::Greeting { motd: self.string()? },
            10 => Event::LineLost,
            tag => return Err(DecodeError::UnknownTag { what: "event", tag }),
        })
    }

    /// A census list: names and how many users each has.
    fn census(&mut self) -> Result<Vec<(String, u64)>, DecodeError> {
        let count = self.count(12)?;
        let mut users = Vec::with_capacity(count);
        for _ in 0..count {
            users.push((self.string()?, self.u64()?));
        }
        Ok(users)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}
