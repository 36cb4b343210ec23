//! Brute-force throttling of failed client authentications and password logins.
//!
//! Failures are counted per key in a sliding window: per client id *from one source address*,
//! per username *from one source address*, per source address, and per client id or username
//! from anywhere (a higher limit, so that hopping across addresses, e.g. through the /64s of an
//! IPv6 allocation, cannot multiply the attempts on one name). Once a key reaches its limit,
//! each further failure doubles a block (from `base_backoff` up to `max_backoff`), during which
//! attempts are answered 429 without being checked or counted. Because failures age out and the
//! block is capped, even an attacker only slows a real client or user to one attempt per
//! `max_backoff`; and only *unproven* attempts are throttled at all: a client whose secret is in
//! the verified-secret cache is answered before any throttle check (see `grants::authenticate`).
//! A success clears the identity's per-address key. IPv6 addresses count per /64 (one host
//! usually owns a whole /64).
//!
//! Where the counts live: in memory, per instance, by default (bounded to `MAX_KEYS` keys; when
//! full, the least recently failed keys are evicted, never "stop counting"); with
//! `store = "redis"`, in Redis, shared by every instance (see `shared`), so the number of
//! replicas does not multiply an attacker's attempts. Failures are always counted in memory
//! too, so that when Redis cannot be reached the instance falls back at once to its own counts.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::shared::SharedState;

/// Where the throttle's counts live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleStore {
    /// In this instance's memory: right for one instance.
    #[default]
    Memory,
    /// In Redis, shared by every instance (`redis_url`).
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Failures per client id or username from one address before blocking starts.
    pub max_failures: u32,
    /// Failures per source address before blocking starts.
    pub max_failures_per_address: u32,
    /// Failures per client id or username from all addresses together before blocking starts.
    pub max_failures_per_name: u32,
    pub window_secs: u64,
    pub base_backoff_secs: u64,
    pub max_backoff_secs: u64,
    pub store: ThrottleStore,
    /// `redis://[user:password@]host:port[/db]`, with `store = "redis"`.
    #[serde(skip_serializing)]
    pub redis_url: Option<String>,
    /// A file holding the Redis URL (a mounted secret).
    pub redis_url_file: Option<PathBuf>,
    /// Prefix of every Redis key this server writes (several deployments may share a Redis).
    pub redis_key_prefix: String,
    /// Each Redis call gives up after this long; the instance then uses its own counts.
    pub redis_timeout_ms: u64,
    /// After a failed Redis call, Redis is skipped for this long, then probed again.
    pub redis_retry_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failures: 5,
            max_failures_per_address: 50,
            max_failures_per_name: 100,
            window_secs: 300,
            base_backoff_secs: 1,
            max_backoff_secs: 60,
            store: ThrottleStore::Memory,
            redis_url: None,
            redis_url_file: None,
            redis_key_prefix: "auth-server:".to_owned(),
            redis_timeout_ms: 100,
            redis_retry_secs: 5,
        }
    }
}

impl ThrottleSettings {
    pub(crate) fn limit(&self, key: &ThrottleKey) -> u32 {
        match key {
            ThrottleKey::Address(_) => self.max_failures_per_address,
            ThrottleKey::ClientName(_) | ThrottleKey::UserName(_) => self.max_failures_per_name,
            ThrottleKey::Client(..) | ThrottleKey::User(..) => self.max_failures,
        }
    }

    /// The block after the `over`-th failure past the limit (0 at the limit itself).
    pub(crate) fn backoff(&self, over: u32) -> Duration {
        Duration::from_secs(
            self.base_backoff_secs
                .saturating_mul(1u64 << over.min(20))
                .min(self.max_backoff_secs),
        )
    }
}

/// What a failure is counted against. Identities are validated names (at most 128
/// characters), so a key's size is bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Client(String, Option<IpAddr>),
    User(String, Option<IpAddr>),
    Address(IpAddr),
    /// A client id, from any address.
    ClientName(String),
    /// A username, from any address.
    UserName(String),
}

impl ThrottleKey {
    /// The key's name in a shared store: unambiguous, as names are validated (no `|`).
    pub fn encode(&self) -> String {
        let addr = |a: &Option<IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        match self {
            Self::Client(name, a) => format!("c:{name}|{}", addr(a)),
            Self::User(name, a) => format!("u:{name}|{}", addr(a)),
            Self::Address(a) => format!("a:{a}"),
            Self::ClientName(name) => format!("cn:{name}"),
            Self::UserName(name) => format!("un:{name}"),
        }
    }

    /// The per-address identity key (the one a success clears).
    pub fn is_identity_from_address(&self) -> bool {
        matches!(self, Self::Client(..) | Self::User(..))
    }
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

/// The throttle the grants use: shared counts when a shared store is configured and reachable,
/// this instance's own otherwise.
pub struct Throttle {
    settings: ThrottleSettings,
    local: LocalThrottle,
    shared: Option<Arc<SharedState>>,
}

impl Throttle {
    /// Counts in this instance's memory only.
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            local: LocalThrottle::new(settings.clone()),
            settings,
            shared: None,
        }
    }

    /// Counts in `shared` (falling back to memory while it cannot be reached).
    pub fn with_shared(settings: ThrottleSettings, shared: Arc<SharedState>) -> Self {
        Self {
            shared: Some(shared),
            ..Self::new(settings)
        }
    }

    /// `Err(retry_after)` while any of `keys` is blocked.
    pub async fn check(&self, keys: &[ThrottleKey]) -> Result<(), Duration> {
        if !self.settings.enabled {
            return Ok(());
        }
        if let Some(shared) = &self.shared
            && let Some(answer) = shared.throttle_check(keys).await
        {
            return answer;
        }
        self.local.check(keys)
    }

    pub async fn record_failure(&self, keys: &[ThrottleKey]) {
        if !self.settings.enabled {
            return;
        }
        self.local.record_failure(keys);
        if let Some(shared) = &self.shared {
            shared.throttle_failure(&self.settings, keys).await;
        }
    }

    /// A success clears the key (the client or user proved who it is).
    pub async fn record_success(&self, key: &ThrottleKey) {
        if !self.settings.enabled {
            return;
        }
        self.local.record_success(key);
        if let Some(shared) = &self.shared {
            shared.throttle_clear(key).await;
        }
    }
}

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Entry {
    fn last_activity(&self) -> Option<Instant> {
        self.failures.back().copied().max(self.blocked_until)
    }
}

/// Keys tracked before old ones are pruned.
const MAX_KEYS: usize = 100_000;

/// One instance's counts, in memory.
pub struct LocalThrottle {
    settings: ThrottleSettings,
    max_keys: usize,
    entries: Mutex<HashMap<ThrottleKey, Entry>>,
}

impl LocalThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self::with_capacity(settings, MAX_KEYS)
    }

    fn with_capacity(settings: ThrottleSettings, max_keys: usize) -> Self {
        Self {
            settings,
            max_keys,
            entries: Mutex::new(HashMap::new()),
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
        let entries = &mut *entries;
        for key in keys {
            if entries.len() >= self.max_keys && !entries.contains_key(key) {
                make_room(entries, self.max_keys, now, window);
            }
            let limit = self.settings.limit(key) as usize;
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
                entry.blocked_until = Some(now + self.settings.backoff(over));
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

/// The table is full: drop what no longer matters and, if that is not enough, the eighth of
/// the keys that failed least recently (one O(n) pass per n/8 new keys), so that new keys are
/// always counted: a full table never means "stop counting".
fn make_room(
    entries: &mut HashMap<ThrottleKey, Entry>,
    max_keys: usize,
    now: Instant,
    window: Duration,
) {
    entries.retain(|_, e| {
        e.blocked_until.is_some_and(|u| u > now)
            || e.failures
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
    });
    if entries.len() < max_keys {
        return;
    }
    let evict = (max_keys / 8).max(1);
    let mut times: Vec<Option<Instant>> = entries.values().map(Entry::last_activity).collect();
    let (_, cutoff, _) = times.select_nth_unstable(evict - 1);
    let cutoff = *cutoff;
    let mut evicted = 0;
    entries.retain(|_, e| {
        if evicted < evict && e.last_activity() <= cutoff {
            evicted += 1;
            false
        } else {
            true
        }
    });
    metrics::counter!("auth_throttle_evictions_total").increment(evicted as u64);
    tracing::debug!(
        evicted,
        "throttle table full; least recently failed keys evicted"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            enabled: true,
            max_failures: 3,
            max_failures_per_address: 10,
            max_failures_per_name: 20,
            window_secs: 60,
            base_backoff_secs: 2,
            max_backoff_secs: 8,
            ..ThrottleSettings::default()
        }
    }

    fn throttle() -> LocalThrottle {
        LocalThrottle::new(settings())
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

    #[test]
    fn a_full_table_evicts_the_least_recently_failed_keys_and_keeps_counting() {
        let t = LocalThrottle::with_capacity(settings(), 16);
        let start = Instant::now();
        let key = |i: usize| ThrottleKey::User(format!("user{i}"), None);
        // A key blocked early on, then 16 keys failed once each, later: the table is full.
        let early = key(100);
        for _ in 0..3 {
            t.record_failure_at(std::slice::from_ref(&early), start);
        }
        for i in 0..16 {
            t.record_failure_at(&[key(i)], start + Duration::from_millis(10 + i as u64));
        }
        // A new key is still counted (before: "table full; a new key is not tracked" and it
        // could fail forever unthrottled).
        let fresh = [ThrottleKey::User("fresh".into(), None)];
        let later = start + Duration::from_millis(100);
        for _ in 0..3 {
            t.record_failure_at(&fresh, later);
        }
        assert!(t.check_at(&fresh, later).is_err(), "a new key is counted");
        let len = t.entries.lock().unwrap().len();
        assert!(len <= 16, "bounded: {len}");
        // The live, recently failed keys survive; the oldest went first.
        assert!(t.entries.lock().unwrap().contains_key(&key(15)));
        assert!(!t.entries.lock().unwrap().contains_key(&key(0)));
    }

    #[test]
    fn names_have_a_limit_across_addresses() {
        let t = throttle();
        let start = Instant::now();
        // 20 failures on one name, each from another /64: no per-address key reaches its
        // limit, the name's own key does.
        for i in 0..20u16 {
            let addr: IpAddr = format!("2001:db8:{i:x}::1").parse().unwrap();
            let keys = [
                ThrottleKey::User("alice".into(), Some(address_bucket(addr))),
                ThrottleKey::UserName("alice".into()),
                ThrottleKey::Address(address_bucket(addr)),
            ];
            assert!(t.check_at(&keys, start).is_ok(), "attempt {i}");
            t.record_failure_at(&keys, start);
        }
        let next: IpAddr = "2001:db8:ffff::1".parse().unwrap();
        let keys = [
            ThrottleKey::User("alice".into(), Some(address_bucket(next))),
            ThrottleKey::UserName("alice".into()),
        ];
        assert!(t.check_at(&keys, start).is_err());
    }
}
