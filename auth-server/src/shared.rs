//! State every instance shares, in Redis: the throttle's counts and the single-use (replay)
//! identifiers.
//!
//! Redis is an optimisation of safety, never a dependency of availability. Every call has a
//! time-out (`redis_timeout_ms`); a failed call opens a circuit for `redis_retry_secs`, during
//! which nothing waits on Redis (the throttle uses the instance's own counts), after which one
//! request probes it again. An outage is logged once, when it starts, and once when it ends, and
//! shown as `auth_shared_store_up` (0/1) and `auth_shared_store_outages_total`.
//!
//! Times come from Redis (`TIME` inside the scripts, `PTTL` when checking), so instances whose
//! clocks disagree still agree on every window and block.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::stores::{ReplayStore, StoreError};
use crate::throttle::{ThrottleKey, ThrottleSettings};

/// Records one failure against each pair of keys (KEYS[2i-1]: the failures, a sorted set of
/// times; KEYS[2i]: the block), atomically. ARGV: window, base and max backoff (ms), a unique
/// member suffix, then each pair's limit.
const RECORD_FAILURE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
for i = 1, #KEYS, 2 do
  local failures = KEYS[i]
  local limit = tonumber(ARGV[4 + (i + 1) / 2])
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  redis.call('ZADD', failures, now, now .. ':' .. ARGV[4])
  redis.call('ZREMRANGEBYRANK', failures, 0, -(limit + 17))
  redis.call('PEXPIRE', failures, window)
  local n = redis.call('ZCARD', failures)
  if n >= limit then
    local over = math.min(n - limit, 20)
    local backoff = math.min(base * (2 ^ over), max)
    redis.call('SET', KEYS[i + 1], '1', 'PX', math.floor(backoff))
  end
end
return 1
";

/// Why a Redis call did not answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("the shared store is skipped after a recent failure")]
    CircuitOpen,
    #[error("the shared store did not answer in time")]
    Timeout,
    #[error("the shared store failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The connection to Redis and what every instance shares through it.
pub struct SharedState {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    retry: Duration,
    record_failure: redis::Script,
    epoch: Instant,
    /// Milliseconds after `epoch` before which Redis is not tried (0: closed circuit).
    skip_until_ms: AtomicU64,
    down: AtomicBool,
}

impl SharedState {
    /// Connects lazily (the first call connects): an instance starts whether Redis is up or not.
    pub fn connect(settings: &ThrottleSettings) -> Result<Arc<Self>, SharedError> {
        let url = settings.redis_url.as_deref().unwrap_or_default();
        let client = redis::Client::open(url)?;
        let timeout = Duration::from_millis(settings.redis_timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        metrics::gauge!("auth_shared_store_up").set(1.0);
        Ok(Arc::new(Self {
            connection,
            prefix: settings.redis_key_prefix.clone(),
            timeout,
            retry: Duration::from_secs(settings.redis_retry_secs),
            record_failure: redis::Script::new(RECORD_FAILURE),
            epoch: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }))
    }

    /// The replay store over the same connection.
    pub fn replay_store(self: &Arc<Self>) -> Arc<dyn ReplayStore> {
        Arc::new(RedisReplayStore {
            shared: self.clone(),
        })
    }

    /// Whether Redis is believed reachable (the circuit is closed).
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// May a call go to Redis now? While the circuit is open, no; once its time has passed,
    /// exactly one caller (the one that moves the deadline on) probes.
    fn admit(&self) -> bool {
        let until = self.skip_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        let next = now + self.retry.as_millis() as u64;
        self.skip_until_ms
            .compare_exchange(until, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn record_ok(&self) {
        self.skip_until_ms.store(0, Ordering::Release);
        if self.down.swap(false, Ordering::AcqRel) {
            metrics::gauge!("auth_shared_store_up").set(1.0);
            tracing::info!("the shared store (Redis) is reachable again: throttling is shared");
        }
    }

    fn record_unreachable(&self, err: &SharedError) {
        let next = self.now_ms() + self.retry.as_millis() as u64;
        self.skip_until_ms.store(next.max(1), Ordering::Release);
        if !self.down.swap(true, Ordering::AcqRel) {
            metrics::gauge!("auth_shared_store_up").set(0.0);
            metrics::counter!("auth_shared_store_outages_total").increment(1);
            tracing::warn!(
                cause = %err,
                retry_secs = self.retry.as_secs(),
                "the shared store (Redis) is unreachable: throttling per instance until it is back"
            );
        }
    }

    /// Runs one call under the circuit and the time-out.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, SharedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.admit() {
            return Err(SharedError::CircuitOpen);
        }
        let result = match tokio::time::timeout(self.timeout, f(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(SharedError::Redis(err)),
            Err(_) => Err(SharedError::Timeout),
        };
        match &result {
            Ok(_) => self.record_ok(),
            Err(err) => self.record_unreachable(err),
        }
        result
    }

    fn failures_key(&self, key: &ThrottleKey) -> String {
        format!("{}throttle:f:{}", self.prefix, key.encode())
    }

    fn block_key(&self, key: &ThrottleKey) -> String {
        format!("{}throttle:b:{}", self.prefix, key.encode())
    }

    /// `Some(Err(retry_after))` while any key is blocked, `Some(Ok(()))` if none is, `None` when
    /// Redis cannot answer now (the caller uses its own counts).
    pub async fn throttle_check(&self, keys: &[ThrottleKey]) -> Option<Result<(), Duration>> {
        if keys.is_empty() {
            return Some(Ok(()));
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("PTTL").arg(self.block_key(key));
        }
        let ttls: Vec<i64> = self
            .call(|mut c| async move { pipe.query_async(&mut c).await })
            .await
            .ok()?;
        Some(match ttls.into_iter().max() {
            Some(ms) if ms > 0 => Err(Duration::from_millis(ms as u64)),
            _ => Ok(()),
        })
    }

    /// Counts a failure against every key; false if Redis could not be told.
    pub async fn throttle_failure(
        &self,
        settings: &ThrottleSettings,
        keys: &[ThrottleKey],
    ) -> bool {
        if keys.is_empty() {
            return true;
        }
        let mut invocation = self.record_failure.prepare_invoke();
        for key in keys {
            invocation
                .key(self.failures_key(key))
                .key(self.block_key(key));
        }
        invocation
            .arg(settings.window_secs.saturating_mul(1000))
            .arg(settings.base_backoff_secs.saturating_mul(1000))
            .arg(settings.max_backoff_secs.saturating_mul(1000))
            .arg(uuid::Uuid::new_v4().simple().to_string());
        for key in keys {
            invocation.arg(settings.limit(key));
        }
        self.call(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
            .await
            .is_ok()
    }

    /// Forgets a key's failures and block.
    pub async fn throttle_clear(&self, key: &ThrottleKey) -> bool {
        let keys = [self.failures_key(key), self.block_key(key)];
        self.call(|mut c| async move {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<i64>(&mut c)
                .await
        })
        .await
        .is_ok()
    }
}

/// Single-use identifiers in Redis: `SET key 1 NX PX ttl`, so the first use wins on every
/// instance. Fails closed: when Redis cannot answer, `StoreError::Unavailable` (the caller
/// refuses the request rather than risk a replay).
pub struct RedisReplayStore {
    shared: Arc<SharedState>,
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn first_use(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        use std::fmt::Write as _;
        let mut name = format!("{}replay:", self.shared.prefix);
        for byte in key {
            let _ = write!(name, "{byte:02x}");
        }
        // Relative to the caller's clock, so that Redis's clock does not matter; at least 1 s.
        let ttl_ms = expires_at.saturating_sub(now).max(1).saturating_mul(1000);
        let set: Option<String> = self
            .shared
            .call(|mut c| async move {
                redis::cmd("SET")
                    .arg(&name)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await
            })
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    //! Against the real Redis at 127.0.0.1:6379 (`REDIS_URL` overrides), each test under its
    //! own random key prefix, deleted at the end.

    use std::time::Instant;

    use super::*;

    fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    fn settings(url: &str) -> ThrottleSettings {
        ThrottleSettings {
            store: crate::throttle::ThrottleStore::Redis,
            redis_url: Some(url.to_owned()),
            redis_key_prefix: format!("test-{}:", uuid::Uuid::new_v4().simple()),
            max_failures: 3,
            max_failures_per_address: 10,
            base_backoff_secs: 2,
            max_backoff_secs: 8,
            ..ThrottleSettings::default()
        }
    }

    async fn clean_up(prefix: &str) {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_replayed_key_is_refused_until_it_expires_under_the_prefix() {
        let settings = settings(&redis_url());
        let shared = SharedState::connect(&settings).unwrap();
        let replay = shared.replay_store();
        let key = [7u8; 32];
        let other = [8u8; 32];
        let now = crate::clock::now_secs();
        assert!(replay.first_use(&key, now + 1, now).await.unwrap());
        assert!(
            !replay.first_use(&key, now + 60, now).await.unwrap(),
            "replay"
        );
        assert!(replay.first_use(&other, now + 60, now).await.unwrap());

        // Stored under the configured prefix, with the time to live asked for.
        let client = redis::Client::open(redis_url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let name = format!("{}replay:{}", settings.redis_key_prefix, "07".repeat(32));
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!((1..=1000).contains(&ttl), "{ttl}");

        // Once expired, the key may be used again (its own expiry is the caller's check).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(replay.first_use(&key, now + 60, now).await.unwrap());
        clean_up(&settings.redis_key_prefix).await;
    }

    #[tokio::test]
    async fn failures_are_counted_and_blocks_set_in_redis() {
        let settings = settings(&redis_url());
        let a = SharedState::connect(&settings).unwrap();
        let b = SharedState::connect(&settings).unwrap();
        let key = [ThrottleKey::User("alice".into(), None)];
        for state in [&a, &b] {
            assert_eq!(state.throttle_check(&key).await, Some(Ok(())));
            assert!(state.throttle_failure(&settings, &key).await);
        }
        assert_eq!(
            a.throttle_check(&key).await,
            Some(Ok(())),
            "under the limit"
        );
        assert!(b.throttle_failure(&settings, &key).await);
        let wait = a.throttle_check(&key).await.unwrap().unwrap_err();
        assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2));
        assert!(b.throttle_failure(&settings, &key).await);
        let wait = a.throttle_check(&key).await.unwrap().unwrap_err();
        assert!(wait > Duration::from_millis(3500), "doubled: {wait:?}");
        assert!(a.throttle_clear(&key[0]).await);
        assert_eq!(b.throttle_check(&key).await, Some(Ok(())), "cleared");
        clean_up(&settings.redis_key_prefix).await;
    }

    #[tokio::test]
    async fn an_unreachable_redis_answers_at_once_and_is_skipped_until_the_retry() {
        // Nothing listens on port 1.
        let settings = settings("redis://127.0.0.1:1");
        let shared = SharedState::connect(&settings).unwrap();
        let key = [ThrottleKey::Address("192.0.2.1".parse().unwrap())];
        let start = Instant::now();
        assert_eq!(shared.throttle_check(&key).await, None);
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        assert!(!shared.is_up());
        // The circuit is open: no attempt at all.
        let start = Instant::now();
        for _ in 0..100 {
            assert_eq!(shared.throttle_check(&key).await, None);
            assert!(!shared.throttle_failure(&settings, &key).await);
        }
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
        let replay = shared.replay_store();
        assert!(matches!(
            replay.first_use(&[1; 32], 10, 0).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
