//! The clients in use, held in memory: the token path reads no database for a client it has
//! seen, and keeps working through a database outage for as long as `max_stale_secs` allows.
//!
//! Kept true by the change log: every write to the clients table (this instance, another one,
//! the command line) adds a change in the same transaction; the sync loop reads the log every
//! `client_sync_interval_ms` (at once when PostgreSQL notifies) and drops the clients that
//! changed, so a removed client or a rotated secret stops working on every instance within that
//! interval plus one round trip. The cache is bounded (`client_cache_capacity`, least used first
//! out) and a client unused for an hour is dropped: an idle client costs nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::availability::Availability;
use crate::clock::now_secs;
use crate::domain::{Client, ClientId, NewClient};
use crate::stores::{ChangeFeed, ClientStore, StoreError};

/// Changes read from the log in one go; more means "forget everything".
const CHANGES_PER_READ: u64 = 10_000;
/// Changes are kept in the log this long (an instance away longer forgets everything).
const CHANGE_LOG_RETENTION_SECS: i64 = 86_400;

pub struct ClientCache {
    store: Arc<dyn ClientStore>,
    /// `None` records a client id known not to exist.
    entries: moka::sync::Cache<ClientId, Option<Arc<Client>>>,
    /// Bumped by every invalidation: a read that started before one is not cached.
    generation: AtomicU64,
    availability: Arc<Availability>,
}

impl ClientCache {
    pub fn new(
        store: Arc<dyn ClientStore>,
        capacity: u64,
        availability: Arc<Availability>,
    ) -> Self {
        Self {
            store,
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            generation: AtomicU64::new(0),
            availability,
        }
    }

    /// Drops what is held of these clients.
    pub fn invalidate(&self, ids: &[String]) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for id in ids {
            if let Ok(id) = ClientId::parse(id) {
                self.entries.invalidate(&id);
            }
        }
    }

    /// Drops everything (changes may have been missed).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    pub fn len(&self) -> u64 {
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ClientStore for ClientCache {
    async fn find(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(held) = self.entries.get(id) {
            if self.availability.memory_usable() {
                return Ok(held);
            }
            return Err(StoreError::Unavailable(format!(
                "the database has been unreachable for {} s (max_stale_secs: {})",
                self.availability.stale_for().as_secs(),
                self.availability.max_stale().as_secs()
            )));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let found = tracing::Instrument::instrument(
            self.store.find(id),
            service_kit::trace_span!("db", otel.name = "SELECT clients", otel.kind = "client"),
        )
        .await?;
        if self.generation.load(Ordering::Acquire) == generation {
            self.entries.insert(id.clone(), found.clone());
        }
        Ok(found)
    }

    async fn list(&self) -> Result<Vec<Client>, StoreError> {
        self.store.list().await
    }

    async fn scopes_in_use(&self) -> Result<Vec<String>, StoreError> {
        self.store.scopes_in_use().await
    }

    // Writes go to the store (which logs the change for the other instances) and take effect
    // here at once.

    async fn insert(&self, client: &NewClient, now: i64) -> Result<(), StoreError> {
        self.store.insert(client, now).await?;
        self.invalidate(&[client.id.to_string()]);
        Ok(())
    }

    async fn upsert(&self, client: &NewClient, now: i64) -> Result<(), StoreError> {
        self.store.upsert(client, now).await?;
        self.invalidate(&[client.id.to_string()]);
        Ok(())
    }

    async fn set_grants(&self, client: &NewClient, now: i64) -> Result<bool, StoreError> {
        let changed = self.store.set_grants(client, now).await?;
        self.invalidate(&[client.id.to_string()]);
        Ok(changed)
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        let removed = self.store.remove(id).await?;
        self.invalidate(&[id.to_string()]);
        Ok(removed)
    }

    async fn set_secret_hash(
        &self,
        id: &ClientId,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = self.store.set_secret_hash(id, secret_hash, now).await?;
        self.invalidate(&[id.to_string()]);
        Ok(changed)
    }

    async fn replace_secret_hash(
        &self,
        id: &ClientId,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = self.store.replace_secret_hash(id, old, new, now).await?;
        self.invalidate(&[id.to_string()]);
        Ok(changed)
    }
}

/// Follows the change log for `cache`: the loop every instance runs.
pub struct ClientSync {
    cache: Arc<ClientCache>,
    feed: Arc<dyn ChangeFeed>,
    /// The last change seen.
    seen: i64,
}

impl ClientSync {
    /// Starts following from the log's current end (the cache is empty: nothing to drop).
    pub async fn start(
        cache: Arc<ClientCache>,
        feed: Arc<dyn ChangeFeed>,
    ) -> Result<Self, StoreError> {
        let seen = feed.latest().await?;
        Ok(Self { cache, feed, seen })
    }

    /// One pass: read the log's end (the database's health probe) and drop what changed.
    pub async fn sync(&mut self) -> Result<(), StoreError> {
        let latest = self.feed.latest().await?;
        if latest == self.seen {
            return Ok(());
        }
        if latest < self.seen {
            // The log was reset (a restored database): nothing held can be trusted.
            self.cache.invalidate_all();
            self.seen = latest;
            return Ok(());
        }
        let changed = self
            .feed
            .clients_changed_since(self.seen, CHANGES_PER_READ)
            .await?;
        if changed.complete {
            self.cache.invalidate(&changed.client_ids);
        } else {
            self.cache.invalidate_all();
        }
        tracing::debug!(
            changed = changed.client_ids.len(),
            complete = changed.complete,
            "clients changed"
        );
        self.seen = changed.through.max(latest);
        Ok(())
    }

    /// Syncs every `interval`, and at once when `wake` is notified (PostgreSQL's NOTIFY),
    /// until aborted; purges old changes now and then.
    pub fn spawn(mut self, interval: Duration, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut passes: u64 = 0;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = wake.notified() => {}
                }
                metrics::gauge!("auth_client_cache_entries").set(self.cache.len() as f64);
                if let Err(err) = self.sync().await {
                    // The probe recorded an outage in `Availability` (logged there, once).
                    tracing::debug!(error = %err, "client sync failed");
                    continue;
                }
                passes += 1;
                if passes.is_multiple_of(7200) {
                    let before = now_secs() - CHANGE_LOG_RETENTION_SECS;
                    if let Err(err) = self.feed.purge_before(before).await {
                        tracing::debug!(error = %err, "purging the change log failed");
                    }
                }
            }
        })
    }
}
