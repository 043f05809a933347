//! The connections a frontend parked with the supervisor (see [`crate::handoff`]): a copy of each
//! client socket by session id, with its slot in the server's position file, kept across the
//! frontend's restarts and sent to each new process of the server, which adopts them (the position
//! file first); closed when the server stops for good.
//!
//! It also sizes the supervisor's open-file limit: every parked connection is a descriptor here.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::chat::SessionId;
use crate::config::Config;
use crate::handoff::socket::Channel;
use crate::handoff::{MAX_FDS, Message, SessionSlot};

/// Descriptors the supervisor keeps beyond the parked connections: listeners, logs, sockets.
pub const FD_HEADROOM: u64 = 1024;

/// One server's parked connections.
#[derive(Default)]
pub struct Parked {
    fds: HashMap<SessionId, (u32, OwnedFd)>,
    /// What the readers of a process that handed over left, for the next process alone.
    carried: Option<OwnedFd>,
}

impl Parked {
    /// Applies a frontend's packet; false if it is not one a frontend sends.
    pub fn apply(&mut self, message: Message, fds: Vec<OwnedFd>) -> bool {
        match message {
            Message::Park(list) => {
                // A session parked twice keeps its newest copy; the older one closes.
                for ((id, slot), fd) in list.into_iter().zip(fds) {
                    self.fds.insert(id, (slot, fd));
                }
                true
            }
            Message::Release(ids) => {
                for id in ids {
                    self.fds.remove(&id);
                }
                true
            }
            Message::Carry => {
                self.carried = fds.into_iter().next();
                true
            }
            Message::Adopt(_) | Message::PositionFile | Message::Adopted | Message::HandOver => false,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Closes every copy (the server stopped for good: its clients are disconnected).
    pub fn clear(&mut self) -> usize {
        let closed = self.fds.len();
        self.fds = HashMap::new();
        self.carried = None;
        closed
    }

    /// Every parked session, oldest id first.
    fn ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self.fds.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// Sends a new process the server's position file, what its predecessor's readers left (if it
/// handed over), every parked connection, [`MAX_FDS`] to a packet, then the end of the adoption.
/// Connections released meanwhile are skipped. Returns how many were sent.
pub async fn send_for_adoption(
    channel: Arc<Channel>,
    position_file: Arc<OwnedFd>,
    parked: Arc<Mutex<Parked>>,
) -> io::Result<usize> {
    channel
        .send(&Message::PositionFile, &[position_file.as_raw_fd()])
        .await?;
    let carried = parked.lock().carried.take();
    if let Some(carried) = carried {
        channel.send(&Message::Carry, &[carried.as_raw_fd()]).await?;
    }
    let ids = parked.lock().ids();
    let mut sent = 0;
    for chunk in ids.chunks(MAX_FDS) {
        loop {
            let result = {
                // The descriptors stay open while the lock is held, and the send does not wait.
                let parked = parked.lock();
                let (ids, fds): (Vec<SessionSlot>, Vec<RawFd>) = chunk
                    .iter()
                    .filter_map(|id| parked.fds.get(id).map(|(slot, fd)| ((*id, *slot), fd.as_raw_fd())))
                    .unzip();
                if ids.is_empty() {
                    break;
                }
                let count = ids.len();
                channel.try_send(&Message::Adopt(ids), &fds).map(|()| count)
            };
            match result {
                Ok(count) => {
                    sent += count;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => channel.writable().await?,
                Err(e) => return Err(e),
            }
        }
    }
    channel.send(&Message::Adopted, &[]).await?;
    Ok(sent)
}

/// The open-file limit `up` needs: a descriptor per connection every server may hold (each may
/// be parked here), plus [`FD_HEADROOM`].
pub fn fd_needed(config: &Config) -> u64 {
    config
        .servers
        .iter()
        .map(|s| s.settings.limits.max_connections as u64)
        .sum::<u64>()
        + FD_HEADROOM
}

/// Raises the soft open-file limit to what `up` needs (or the hard limit, if lower); says what is
/// wrong if the hard limit is too low.
pub fn raise_fd_limit(config: &Config) -> Option<String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = fd_needed(config);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let target = needed.min(hard).max(soft);
    if target > soft
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, target, hard)
    {
        return Some(format!(
            "could not raise the open-file limit from {soft} to {target}: {e}"
        ));
    }
    fd_shortfall(needed, hard)
}

/// What `check` and `up` say when the hard open-file limit is below what the servers need.
pub fn fd_shortfall(needed: u64, hard: u64) -> Option<String> {
    (hard < needed).then(|| {
        format!(
            "the open-file hard limit ({hard}) is below the {needed} descriptors the servers' max_connections \
             need (each client may be parked with the supervisor); raise it (ulimit -Hn, LimitNOFILE=) or lower \
             max_connections"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn parks_and_releases_keep_one_copy_per_live_session() {
        let mut parked = Parked::default();
        assert!(parked.apply(
            Message::Park(vec![(1, 0), (2, 1), (3, 2)]),
            vec![null(), null(), null()]
        ));
        assert!(parked.apply(Message::Park(vec![(2, 1)]), vec![null()]));
        assert_eq!(parked.len(), 3);
        assert!(parked.apply(Message::Release(vec![1, 3, 99]), vec![]));
        assert_eq!(parked.ids(), vec![2]);
        assert!(!parked.apply(Message::HandOver, vec![]), "not a frontend's message");
        assert_eq!(parked.clear(), 1);
        assert!(parked.is_empty());
    }

    #[test]
    fn a_hard_limit_below_the_servers_needs_is_named() {
        assert!(fd_shortfall(21_024, 20_000).unwrap().contains("below the 21024"));
        assert_eq!(fd_shortfall(21_024, 1 << 20), None);
    }

    #[tokio::test]
    async fn a_new_process_gets_every_parked_connection_then_the_end() {
        let (ours, theirs) = crate::handoff::socket::pair().unwrap();
        let (ours, theirs) = (Arc::new(Channel::new(ours).unwrap()), Channel::new(theirs).unwrap());
        let parked = Arc::new(Mutex::new(Parked::default()));
        let ids: Vec<SessionId> = (1..=600).collect();
        let list = ids.iter().map(|id| (*id, *id as u32)).collect();
        parked
            .lock()
            .apply(Message::Park(list), ids.iter().map(|_| null()).collect());
        let position_file = Arc::new(crate::journal::PositionFile::create("test", 1000).unwrap());
        let sending = tokio::spawn(send_for_adoption(ours, position_file, parked.clone()));
        let got = crate::frontend::handoff::receive(&theirs).await.unwrap();
        assert_eq!(sending.await.unwrap().unwrap(), 600);
        assert!(got.file.is_some(), "the position file came first");
        assert_eq!(got.clients.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(), ids);
        assert!(got.clients.iter().all(|(id, slot, _)| *slot == *id as u32));
        assert_eq!(parked.lock().len(), 600, "the supervisor keeps its copies");
    }
}
