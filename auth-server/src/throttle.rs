//! Brute-force throttling of failed client authentications and password logins.
//!
//! Failures are counted per key in a sliding window: per client id *from one source address*,
//! per username *from one source address*, and per source address. Once a key reaches its
//! limit, each further failure doubles a block (from `base_backoff` up to `max_backoff`),
//! during which attempts are answered 429 without being checked or counted. A client or user is
//! never blocked by failures from other addresses, so nobody can lock a real client or user out
//! by knowing its name; because failures age out and the block is capped, even an attacker on
//! the same address only slows them to one attempt per `max_backoff`. A success clears the key.
//! IPv6 addresses count per /64 (one host usually owns a whole /64). State is in memory, per
//! instance, bounded to `MAX_KEYS` keys.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Failures per client id or username before blocking starts.
    pub max_failures: u32,
    /// Failures per source address before blocking starts.
    pub max_failures_per_address: u32,
    pub window_secs: u64,
    pub base_backoff_secs: u64,
    pub max_backoff_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failures: 5,
            max_failures_per_address: 50,
            window_secs: 300,
            base_backoff_secs: 1,
            max_backoff_secs: 60,
        }
    }
}

/// What a failure is counted against. Identities are validated names (at most 128
/// characters), so a key's size is bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Client(String, Option<IpAddr>),
    User(String, Option<IpAddr>),
    Address(IpAddr),
}

/// The address a throttle counts: IPv4 as is, IPv6 by its /64 prefix.
pub fn address_bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// Keys tracked before old ones are pruned.
const MAX_KEYS: usize = 100_000;

pub struct Throttle {
    settings: ThrottleSettings,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<ThrottleKey, Entry>,
    last_prune: Option<Instant>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn limit(&self, key: &ThrottleKey) -> usize {
        match key {
            ThrottleKey::Address(_) => self.settings.max_failures_per_address as usize,
            _ => self.settings.max_failures as usize,
        }
    }

    /// `Err(retry_after)` while any of `keys` is blocked.
    pub fn check(&self, keys: &[ThrottleKey]) -> Result<(), Duration> {
        self.check_at(keys, Instant::now())
    }

    fn check_at(&self, keys: &[ThrottleKey], now: Instant) -> Result<(), Duration> {
        if !self.settings.enabled {
            return Ok(());
        }
        let entries = self.entries.lock().expect("throttle lock");
        let wait = keys
            .iter()
            .filter_map(|k| entries.map.get(k)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, keys: &[ThrottleKey]) {
        self.record_failure_at(keys, Instant::now());
    }

    fn record_failure_at(&self, keys: &[ThrottleKey], now: Instant) {
        if !self.settings.enabled {
            return;
        }
        let window = Duration::from_secs(self.settings.window_secs);
        let mut entries = self.entries.lock().expect("throttle lock");
        let entries = &mut *entries;
        // Full: drop what no longer matters, at most once a second (the scan is O(n)).
        if entries.map.len() >= MAX_KEYS
            && entries
                .last_prune
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            entries.last_prune = Some(now);
            entries.map.retain(|_, e| {
                e.blocked_until.is_some_and(|u| u > now)
                    || e.failures
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for key in keys {
            let limit = self.limit(key);
            // Still full of live keys: keep counting the known ones, track no new one.
            if entries.map.len() >= MAX_KEYS && !entries.map.contains_key(key) {
                tracing::warn!("throttle table full; a new key is not tracked");
                continue;
            }
            let entry = entries.map.entry(key.clone()).or_default();
            while entry
                .failures
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                entry.failures.pop_front();
            }
            entry.failures.push_back(now);
            // Keep memory bounded: what matters is how far over the limit the key is.
            while entry.failures.len() > limit + 16 {
                entry.failures.pop_front();
            }
            if entry.failures.len() >= limit {
                let over = (entry.failures.len() - limit) as u32;
                let backoff = self
                    .settings
                    .base_backoff_secs
                    .saturating_mul(1u64 << over.min(20))
                    .min(self.settings.max_backoff_secs);
                entry.blocked_until = Some(now + Duration::from_secs(backoff));
            }
        }
    }

    /// A success clears the key (the client or user proved who it is).
    pub fn record_success(&self, key: &ThrottleKey) {
        if self.settings.enabled {
            self.entries.lock().expect("throttle lock").map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleSettings {
            enabled: true,
            max_failures: 3,
            max_failures_per_address: 10,
            window_secs: 60,
            base_backoff_secs: 2,
            max_backoff_secs: 8,
        })
    }

    #[test]
    fn blocking_starts_at_the_limit_and_backs_off_up_to_the_cap() {
        let t = throttle();
        let key = [ThrottleKey::User("alice".into(), None)];
        let start = Instant::now();
        for i in 0..2 {
            t.record_failure_at(&key, start + Duration::from_millis(i));
        }
        assert!(t.check_at(&key, start).is_ok(), "under the limit");

        t.record_failure_at(&key, start);
        assert_eq!(t.check_at(&key, start).unwrap_err(), Duration::from_secs(2));
        t.record_failure_at(&key, start);
        assert_eq!(t.check_at(&key, start).unwrap_err(), Duration::from_secs(4));
        for _ in 0..10 {
            t.record_failure_at(&key, start);
        }
        assert_eq!(
            t.check_at(&key, start).unwrap_err(),
            Duration::from_secs(8),
            "capped"
        );
    }

    #[test]
    fn a_block_ends_and_failures_age_out_of_the_window() {
        let t = throttle();
        let key = [ThrottleKey::Client("svc".into(), None)];
        let start = Instant::now();
        for _ in 0..3 {
            t.record_failure_at(&key, start);
        }
        assert!(t.check_at(&key, start + Duration::from_secs(1)).is_err());
        assert!(
            t.check_at(&key, start + Duration::from_secs(3)).is_ok(),
            "block over"
        );

        // After the window, one more failure starts counting from one again.
        t.record_failure_at(&key, start + Duration::from_secs(61));
        assert!(t.check_at(&key, start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn a_success_clears_the_key_and_keys_are_independent() {
        let t = throttle();
        let alice = ThrottleKey::User("alice".into(), None);
        let bob = ThrottleKey::User("bob".into(), None);
        for _ in 0..3 {
            t.record_failure(std::slice::from_ref(&alice));
        }
        assert!(t.check(std::slice::from_ref(&alice)).is_err());
        assert!(t.check(std::slice::from_ref(&bob)).is_ok());
        t.record_success(&alice);
        assert!(t.check(&[alice]).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_ne!(address_bucket(a), address_bucket(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            address_bucket(mapped),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn addresses_have_their_own_higher_limit() {
        let t = throttle();
        let addr = [ThrottleKey::Address("127.0.0.1".parse().unwrap())];
        for _ in 0..9 {
            t.record_failure(&addr);
        }
        assert!(t.check(&addr).is_ok());
        t.record_failure(&addr);
        assert!(t.check(&addr).is_err());
    }
}
