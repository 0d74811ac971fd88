//! Slows down password guessing at `/auth_token`: per client address, a few failures are
//! free, then each further failure locks the address out for twice as long as the one
//! before (1 s, 2 s, 4 s ... capped at a minute). Every login attempt costs an LDAP round
//! trip or a bcrypt run, so this also keeps one client from hogging the workers.
//!
//! IPv6 clients are tracked per /64: one host usually owns a whole /64, and counting its
//! addresses one by one would give it 2^64 fresh starts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before the lock-outs start.
const FREE_FAILURES: u32 = 5;
/// A quiet spell this long forgets an address's failures.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest lock-out.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Addresses remembered at most; bounds memory when many addresses fail (e.g. a botnet).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Per-address failure counts. Shared by all HTTP workers (one short mutex per call).
#[derive(Debug, Default)]
pub struct Limiter {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter::default()
    }

    /// `Err(retry_after)` while `ip` is locked out: the caller answers 429 without
    /// checking the credentials (a right password must not unlock early, or the lock-out
    /// would not slow guessing at all).
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    /// A successful login forgets the address's failures.
    pub fn record_success(&self, ip: IpAddr) {
        self.lock().remove(&client_key(ip));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // A panic while holding the lock cannot leave an entry half-updated (each update
        // is a plain store), so a poisoned map is still good.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self
            .lock()
            .get(&client_key(ip))
            .and_then(|e| e.locked_until)
        {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let mut entries = self.lock();
        let ip = client_key(ip);
        if !entries.contains_key(&ip) && entries.len() >= MAX_ENTRIES {
            make_room(&mut entries, now);
        }
        let entry = entries.entry(ip).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if now.duration_since(entry.last_failure) > WINDOW {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= FREE_FAILURES {
            let doublings = (entry.failures - FREE_FAILURES).min(16);
            let delay = Duration::from_secs(1u64 << doublings).min(MAX_DELAY);
            entry.locked_until = Some(now + delay);
        }
    }
}

/// The address a client is counted under, here and wherever the service counts clients
/// (logins in flight, connections): IPv4-mapped IPv6 addresses count as IPv4; other IPv6
/// addresses as their /64, since one host usually owns a whole /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The map is full: drop what has expired, and if that is not enough, the address that
/// failed longest ago. A scan of 10k entries happens only under a flood of new addresses,
/// and each of those failures already cost an LDAP round trip.
fn make_room(entries: &mut HashMap<IpAddr, Entry>, now: Instant) {
    entries.retain(|_, e| {
        now.duration_since(e.last_failure) <= WINDOW || e.locked_until.is_some_and(|u| u > now)
    });
    if entries.len() >= MAX_ENTRIES {
        if let Some(oldest) = entries
            .iter()
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(ip, _)| *ip)
        {
            entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn five_failures_are_free_then_delays_grow_to_a_minute() {
        let limiter = Limiter::new();
        let a = ip("192.0.2.1");
        let mut now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            limiter.record_failure_at(a, now);
            assert_eq!(limiter.check_at(a, now), Ok(()));
        }
        let mut delays = Vec::new();
        for _ in 0..10 {
            limiter.record_failure_at(a, now);
            let delay = limiter.check_at(a, now).unwrap_err();
            delays.push(delay.as_secs());
            now += delay;
            assert_eq!(
                limiter.check_at(a, now),
                Ok(()),
                "unlocked when the delay is over"
            );
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // other addresses are not affected
        assert_eq!(limiter.check_at(ip("192.0.2.2"), now), Ok(()));
    }

    #[test]
    fn success_and_quiet_time_forget_failures() {
        let limiter = Limiter::new();
        let a = ip("192.0.2.1");
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            limiter.record_failure_at(a, now);
        }
        assert!(limiter.check_at(a, now).is_err());
        limiter.record_success(a);
        assert_eq!(limiter.check_at(a, now), Ok(()));

        for _ in 0..FREE_FAILURES - 1 {
            limiter.record_failure_at(a, now);
        }
        let later = now + WINDOW + Duration::from_secs(1);
        limiter.record_failure_at(a, later);
        assert_eq!(
            limiter.check_at(a, later),
            Ok(()),
            "old failures were forgotten"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = Limiter::new();
        let now = Instant::now();
        for i in 0..FREE_FAILURES {
            limiter.record_failure_at(ip(&format!("2001:db8:1:2::{i}")), now);
        }
        assert!(limiter.check_at(ip("2001:db8:1:2:ffff::1"), now).is_err());
        assert_eq!(limiter.check_at(ip("2001:db8:1:3::1"), now), Ok(()));

        for _ in 0..FREE_FAILURES {
            limiter.record_failure_at(ip("::ffff:192.0.2.9"), now);
        }
        assert!(limiter.check_at(ip("192.0.2.9"), now).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = Limiter::new();
        let start = Instant::now();
        let locked = ip("198.51.100.1");
        for _ in 0..FREE_FAILURES {
            limiter.record_failure_at(locked, start);
        }
        for i in 0..(MAX_ENTRIES as u32 + 500) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            limiter.record_failure_at(addr, start + Duration::from_millis(u64::from(i) + 1));
        }
        let entries = limiter.lock();
        assert!(entries.len() <= MAX_ENTRIES);
        // the newest addresses are kept, the oldest made room
        assert!(entries.contains_key(&IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + MAX_ENTRIES as u32 + 499
        ))));
        assert!(!entries.contains_key(&locked));
    }
}
