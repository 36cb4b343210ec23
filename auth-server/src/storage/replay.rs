//! Single-use identifiers in the database, so that every instance sharing it refuses a replay.
//! An insert that conflicts with a live row is a replay; an expired row is replaced. Expired
//! rows are swept now and then by the writes themselves, so the table holds at most what was
//! used within the longest accepted lifetime.
//!
//! Writes are grouped: the uses that arrive while one write is in flight go to the database
//! together, in one transaction (delete their expired rows, insert them all with `ON CONFLICT
//! DO NOTHING RETURNING key`: the keys returned are the first uses). Under load this costs one
//! round trip and one commit per group instead of two statements per use; alone, a use is
//! written at once. The group is written by a task of its own, so a request that goes away
//! (its client hung up) cannot leave the others waiting. Rows are inserted in key order, so
//! that two instances writing overlapping groups lock them in the same order (no deadlock).
//! The sweep of expired rows runs after a group, in a statement of its own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use tokio::sync::oneshot;

use super::Db;
use super::entities::used_jti::{self, Entity as UsedJtis};
use crate::stores::{ReplayStore, StoreError};

/// Every expired row is deleted once this many uses have been written since the last sweep.
const SWEEP_EVERY: u32 = 1024;
/// At most this many uses in one transaction (two bind parameters each, far below the
/// database's limits); the rest wait for the next one.
const MAX_GROUP: usize = 256;

#[derive(Clone)]
pub struct ReplayRepository {
    shared: Arc<Shared>,
}

struct Shared {
    db: Db,
    queue: Mutex<Queue>,
    since_sweep: AtomicU32,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Use>,
    /// A writer task is running; it takes what is waiting until nothing is.
    writing: bool,
}

struct Use {
    key: String,
    expires_at: i64,
    now: i64,
    answer: oneshot::Sender<Result<bool, StoreError>>,
}

impl ReplayRepository {
    pub(super) fn new(db: Db) -> Self {
        Self {
            shared: Arc::new(Shared {
                db,
                queue: Mutex::new(Queue::default()),
                since_sweep: AtomicU32::new(0),
            }),
        }
    }
}

#[async_trait]
impl ReplayStore for ReplayRepository {
    async fn first_use(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (answer, answered) = oneshot::channel();
        let key = key.iter().map(|b| format!("{b:02x}")).collect();
        let start_writer = {
            let mut queue = self.shared.lock();
            queue.waiting.push(Use {
                key,
                expires_at,
                now,
                answer,
            });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move { shared.write_until_empty().await });
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Failed(
                "the single-use record was not written".into(),
            ))
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what waits, group by group, until nothing does.
    async fn write_until_empty(&self) {
        // Should this task end early (a panic), the uses still waiting are answered with an
        // error (their senders dropped) and the next use starts a new writer.
        struct Release<'a> {
            shared: &'a Shared,
            armed: bool,
        }
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if self.armed {
                    let mut queue = self.shared.lock();
                    queue.waiting.clear();
                    queue.writing = false;
                }
            }
        }
        let mut release = Release {
            shared: self,
            armed: true,
        };
        loop {
            let group: Vec<Use> = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    // Under the lock: a use queued after this starts the next writer.
                    queue.writing = false;
                    release.armed = false;
                    return;
                }
                let take = queue.waiting.len().min(MAX_GROUP);
                queue.waiting.drain(..take).collect()
            };
            self.write(group).await;
            self.sweep_now_and_then().await;
        }
    }

    /// Deletes every expired row once `SWEEP_EVERY` uses have been written since the last time.
    async fn sweep_now_and_then(&self) {
        if self.since_sweep.load(Ordering::Relaxed) < SWEEP_EVERY {
            return;
        }
        self.since_sweep.store(0, Ordering::Relaxed);
        let now = crate::clock::now_secs();
        let conn = self.db.conn();
        let swept = self
            .db
            .run(async {
                UsedJtis::delete_many()
                    .filter(used_jti::Column::ExpiresAt.lt(now))
                    .exec(conn)
                    .await
            })
            .await;
        if let Err(err) = swept {
            tracing::warn!(error = %err, "could not delete expired single-use records");
        }
    }

    /// One transaction for `group`; answers each use.
    async fn write(&self, group: Vec<Use>) {
        // The same key twice in one group: only its first use can be the first.
        let mut seen = HashSet::with_capacity(group.len());
        let mut uses: Vec<&Use> = group.iter().filter(|u| seen.insert(&u.key)).collect();
        uses.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&str> = uses.iter().map(|u| u.key.as_str()).collect();
        let rows: Vec<used_jti::ActiveModel> = uses
            .iter()
            .map(|u| used_jti::ActiveModel {
                key: Set(u.key.clone()),
                expires_at: Set(u.expires_at),
            })
            .collect();
        // Rows expired before the earliest of these uses may be replaced.
        let now = group.iter().map(|u| u.now).min().unwrap_or_default();
        let written = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        self.since_sweep.fetch_add(written, Ordering::Relaxed);
        let conn = self.db.conn();
        let result = self
            .db
            .run(async {
                let txn = conn.begin().await?;
                UsedJtis::delete_many()
                    .filter(used_jti::Column::ExpiresAt.lt(now))
                    .filter(used_jti::Column::Key.is_in(keys.iter().copied()))
                    .exec(&txn)
                    .await?;
                let inserted = match UsedJtis::insert_many(rows)
                    .on_conflict(
                        OnConflict::column(used_jti::Column::Key)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_with_returning_keys(&txn)
                    .await
                {
                    Ok(keys) => keys,
                    Err(DbErr::RecordNotInserted) => Vec::new(),
                    Err(err) => return Err(err),
                };
                txn.commit().await?;
                Ok(inserted)
            })
            .await;
        match result {
            Ok(inserted) => {
                let mut first: HashSet<String> = inserted.into_iter().collect();
                for u in group {
                    // `remove`: a key's later uses in this group are replays.
                    let _ = u.answer.send(Ok(first.remove(&u.key)));
                }
            }
            Err(err) => {
                for u in group {
                    let _ = u.answer.send(Err(same_error(&err)));
                }
            }
        }
    }
}

/// The group's error, for each of its uses.
fn same_error(err: &StoreError) -> StoreError {
    match err {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::Corrupt(why) => StoreError::Corrupt(why.clone()),
        StoreError::Failed(why) => StoreError::Failed(why.clone()),
    }
}
