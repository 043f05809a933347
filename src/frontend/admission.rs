//! Who may connect: at most `max_connections` at once, at most `max_connections_per_ip` from one
//! address. Every accepted TCP connection counts, whatever it turns out to be (a telnet client, a
//! page load, a WebSocket), from accept to close. Pure counting, no I/O.
//!
//! IPv6 clients are counted per /64, the smallest block a home or a host is given: counting single
//! addresses would let one host open a connection from each of its 2^64 addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Why a connection is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` reached.
    Full,
    /// `max_connections_per_ip` reached for this address.
    PerIp,
}

/// The counts of one server.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<Source, usize>,
}

/// What connections are counted by: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.into()),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    source: Source,
}

impl Admission {
    pub fn new(max: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let source = Source::of(ip);
        let mut counts = self.lock();
        if counts.total >= self.max {
            return Err(Refusal::Full);
        }
        let from = counts.by_source.entry(source).or_insert(0);
        if *from >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *from += 1;
        counts.total += 1;
        Ok(Ticket {
            admission: self.clone(),
            source,
        })
    }

    /// Counts a connection a previous process of this server admitted (adopted after a restart):
    /// it is served whatever the limits say now.
    pub fn admit_adopted(self: &Arc<Self>, ip: IpAddr) -> Ticket {
        let source = Source::of(ip);
        let mut counts = self.lock();
        *counts.by_source.entry(source).or_insert(0) += 1;
        counts.total += 1;
        Ticket {
            admission: self.clone(),
            source,
        }
    }

    /// Connections admitted and not yet closed.
    pub fn count(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Counts> {
        self.counts.lock()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.total -= 1;
        if let Some(from) = counts.by_source.get_mut(&self.source) {
            *from -= 1;
            if *from == 0 {
                counts.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_then_in_all() {
        let admission = Admission::new(5, 2);
        let a1 = admission.admit(ip("127.0.0.1")).unwrap();
        let _a2 = admission.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(admission.admit(ip("127.0.0.1")).unwrap_err(), Refusal::PerIp);
        let _b1 = admission.admit(ip("127.0.0.2")).unwrap();
        let _b2 = admission.admit(ip("127.0.0.2")).unwrap();
        let _c1 = admission.admit(ip("127.0.0.3")).unwrap();
        assert_eq!(admission.admit(ip("127.0.0.4")).unwrap_err(), Refusal::Full);
        drop(a1);
        assert_eq!(admission.count(), 4);
        let _a3 = admission.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(admission.count(), 5);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let admission = Admission::new(100, 1);
        let _x = admission.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(admission.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(), Refusal::PerIp);
        let _y = admission.admit(ip("2001:db8:1:3::1")).unwrap();
        let _z = admission.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(admission.admit(ip("::ffff:10.0.0.1")).unwrap_err(), Refusal::PerIp);
    }

    #[test]
    fn closing_frees_the_address_entirely() {
        let admission = Admission::new(10, 3);
        let tickets: Vec<_> = (0..3).map(|_| admission.admit(ip("::1")).unwrap()).collect();
        drop(tickets);
        assert_eq!(admission.count(), 0);
        assert!(admission.lock().by_source.is_empty());
    }
}
