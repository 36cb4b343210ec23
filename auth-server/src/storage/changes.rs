//! The change log (table `changes`): written with every client or API write, read by each
//! instance's sync loop (a changed API makes it drop every client it holds). On PostgreSQL a write also sends `NOTIFY auth_changes`, and a listener wakes the
//! sync loop at once; notifications can be lost (a dropped listener connection), so the periodic
//! read of the log is what makes the bound hold.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;

use super::Db;
use super::entities::change::{self, Column, Entity as Changes};
use crate::clock::now_secs;
use crate::stores::{ChangeFeed, ChangedClients, StoreError};

/// The channel instances listen on.
const CHANNEL: &str = "auth_changes";
const CLIENT: &str = "client";
const API: &str = "api";

/// What a change is about: a client, or an API (every client's view of its APIs may be stale).
#[derive(Clone, Copy)]
pub(super) enum Changed {
    Client,
    Api,
}

impl Changed {
    fn entity(self) -> &'static str {
        match self {
            Changed::Client => CLIENT,
            Changed::Api => API,
        }
    }
}

/// Runs `write` and records that `key` (a `what`) changed, in one transaction: every write to
/// the clients or APIs goes through here.
pub(super) async fn write_logged<T: Send>(
    db: &Db,
    what: Changed,
    key: &str,
    write: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<T, DbErr> + Send,
) -> Result<T, StoreError> {
    let postgres = db.is_postgres();
    db.run(async {
        let txn = db.conn().begin().await?;
        let value = write(&txn).await?;
        record_change(&txn, what.entity(), key, postgres).await?;
        txn.commit().await?;
        Ok(value)
    })
    .await
}

async fn record_change(
    txn: &impl ConnectionTrait,
    entity: &str,
    id: &str,
    postgres: bool,
) -> Result<(), DbErr> {
    if postgres {
        // Writers of the log take turns until they commit, so that sequence numbers become
        // visible in order: a reader never sees change N+1 while N is still uncommitted (it
        // would skip N for good). Client writes are rare; readers are not blocked.
        txn.execute_unprepared("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE")
            .await?;
    }
    Changes::insert(change::ActiveModel {
        entity: Set(entity.to_owned()),
        entity_key: Set(id.to_owned()),
        changed_at: Set(now_secs()),
        ..Default::default()
    })
    .exec(txn)
    .await?;
    if postgres {
        // Delivered when (and only if) the transaction commits.
        txn.execute_unprepared(&format!("NOTIFY {CHANNEL}")).await?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct ChangeLog {
    db: Db,
}

impl ChangeLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ChangeFeed for ChangeLog {
    async fn latest(&self) -> Result<i64, StoreError> {
        let latest: Option<Option<i64>> = self
            .db
            .probe(
                Changes::find()
                    .select_only()
                    .column_as(Column::Seq.max(), "latest")
                    .into_tuple()
                    .one(self.db.conn()),
            )
            .await?;
        Ok(latest.flatten().unwrap_or(0))
    }

    async fn clients_changed_since(
        &self,
        seq: i64,
        limit: u64,
    ) -> Result<ChangedClients, StoreError> {
        let (rows, oldest) = self
            .db
            .probe(async {
                let rows: Vec<(i64, String, String)> = Changes::find()
                    .select_only()
                    .column(Column::Seq)
                    .column(Column::Entity)
                    .column(Column::EntityKey)
                    .filter(Column::Seq.gt(seq))
                    .order_by_asc(Column::Seq)
                    .limit(limit)
                    .into_tuple()
                    .all(self.db.conn())
                    .await?;
                let oldest: Option<Option<i64>> = Changes::find()
                    .select_only()
                    .column_as(Column::Seq.min(), "oldest")
                    .into_tuple()
                    .one(self.db.conn())
                    .await?;
                Ok((rows, oldest.flatten()))
            })
            .await?;
        // Rows between `seq` and the oldest kept may have been purged: then some changes are
        // unknown. (A sequence may also skip numbers; that only costs a needless reload.)
        let purged = oldest.is_some_and(|oldest| oldest > seq + 1);
        let full = rows.len() as u64 >= limit;
        // Clients hold their APIs: a changed API changes every client that names it.
        let api_changed = rows.iter().any(|(_, entity, _)| entity != CLIENT);
        Ok(ChangedClients {
            through: rows.last().map_or(seq, |(s, _, _)| *s),
            client_ids: rows
                .into_iter()
                .filter(|(_, entity, _)| entity == CLIENT)
                .map(|(_, _, key)| key)
                .collect(),
            complete: !purged && !full && !api_changed,
        })
    }

    async fn purge_before(&self, before: i64) -> Result<u64, StoreError> {
        let result = self
            .db
            .run(
                Changes::delete_many()
                    .filter(Column::ChangedAt.lt(before))
                    .exec(self.db.conn()),
            )
            .await?;
        Ok(result.rows_affected)
    }
}

/// On PostgreSQL, listens for `NOTIFY auth_changes` and wakes `wake` on each; reconnects by
/// itself. `None` on SQLite, which has no notifications (the sync loop polls).
pub fn spawn_change_listener(
    database: &super::Database,
    wake: Arc<Notify>,
) -> Option<tokio::task::JoinHandle<()>> {
    let db = database.connection();
    if !matches!(db.get_database_backend(), sea_orm::DbBackend::Postgres) {
        return None;
    }
    let pool = db.get_postgres_connection_pool().clone();
    Some(tokio::spawn(async move {
        loop {
            let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await
            {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::debug!(error = %err, "change listener: cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(err) = listener.listen(CHANNEL).await {
                tracing::debug!(error = %err, "change listener: LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => wake.notify_one(),
                    // The connection was lost (notifications may be missed): wake the sync loop,
                    // which reads the log, and listen again.
                    Ok(None) => {
                        wake.notify_one();
                        break;
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "change listener: connection failed");
                        wake.notify_one();
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }))
}
