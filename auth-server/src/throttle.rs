//! Brute-force throttling of failed client authentications and password logins.
//!
//! Failures are counted per key (a client id, a username, a source address) in a sliding
//! window. Once a key reaches its limit, each further failure doubles a block (from
//! `base_backoff` up to `max_backoff`), during which attempts are answered 429 without being
//! checked or counted. Because failures age out of the window and the block is capped, an
//! attacker can slow a real user down to one attempt per `max_backoff` but never lock them out
//! for good; a success clears the key. State is in memory, per instance.

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

/// What a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Client(String),
    User(String),
    Address(IpAddr),
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
    entries: Mutex<HashMap<ThrottleKey, Entry>>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            entries: Mutex::new(HashMap::new()),
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
            .filter_map(|k| entries.get(k)?.blocked_until)
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
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| {
                e.blocked_until.is_some_and(|u| u > now)
                    || e.failures
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for key in keys {
            let limit = self.limit(key);
            let entry = entries.entry(key.clone()).or_default();
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
            self.entries.lock().expect("throttle lock").remove(key);
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
        let key = [ThrottleKey::User("alice".into())];
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
        let key = [ThrottleKey::Client("svc".into())];
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
        let alice = ThrottleKey::User("alice".into());
        let bob = ThrottleKey::User("bob".into());
        for _ in 0..3 {
            t.record_failure(std::slice::from_ref(&alice));
        }
        assert!(t.check(std::slice::from_ref(&alice)).is_err());
        assert!(t.check(std::slice::from_ref(&bob)).is_ok());
        t.record_success(&alice);
        assert!(t.check(&[alice]).is_ok());
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
