//! APIs table: domain `Api` in, domain `Api` out. Every write records an `api` change in the
//! same transaction: each instance then reloads the clients it holds, which carry their APIs.

use std::collections::BTreeSet;

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::Db;
use super::changes::{Changed, write_logged};
use super::entities::api::{self, Entity as Apis};
use crate::domain::{Api, Audience, GrantType, ScopeSet};
use crate::stores::{ApiStore, StoreError};

#[derive(Clone)]
pub struct ApiRepository {
    db: Db,
}

impl ApiRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Runs `write` and records the change of `id`, in one transaction.
    async fn write<T: Send>(
        &self,
        id: &Audience,
        write: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<T, DbErr> + Send,
    ) -> Result<T, StoreError> {
        write_logged(&self.db, Changed::Api, id.as_str(), write).await
    }
}

/// The APIs named `ids`, read with the clients that name them.
pub(super) async fn apis_named(
    db: &Db,
    ids: impl IntoIterator<Item = &str>,
) -> Result<Vec<Api>, StoreError> {
    let ids: BTreeSet<&str> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    db.run(
        Apis::find()
            .filter(api::Column::ApiId.is_in(ids))
            .all(db.conn()),
    )
    .await?
    .into_iter()
    .map(to_domain)
    .collect()
}

/// Every API.
pub(super) async fn all_apis(db: &Db) -> Result<Vec<Api>, StoreError> {
    db.run(Apis::find().order_by_asc(api::Column::ApiId).all(db.conn()))
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

#[async_trait]
impl ApiStore for ApiRepository {
    async fn find(&self, id: &Audience) -> Result<Option<Api>, StoreError> {
        self.db
            .run(Apis::find_by_id(id.as_str()).one(self.db.conn()))
            .await?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self) -> Result<Vec<Api>, StoreError> {
        all_apis(&self.db).await
    }

    async fn insert(&self, api: &Api, now: i64) -> Result<(), StoreError> {
        let row = to_active(api, now);
        self.write(&api.id, async |txn| {
            Apis::insert(row).exec(txn).await.map(drop)
        })
        .await
    }

    async fn upsert(&self, api: &Api, now: i64) -> Result<(), StoreError> {
        let row = to_active(api, now);
        self.write(&api.id, async |txn| {
            Apis::insert(row)
                .on_conflict(
                    OnConflict::column(api::Column::ApiId)
                        .update_columns([
                            api::Column::Resource,
                            api::Column::Scopes,
                            api::Column::TokenTtlSecs,
                            api::Column::GrantTypes,
                            api::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec(txn)
                .await
                .map(drop)
        })
        .await
    }

    async fn remove(&self, id: &Audience) -> Result<bool, StoreError> {
        self.write(id, async |txn| {
            let result = Apis::delete_by_id(id.as_str()).exec(txn).await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }
}

fn to_active(api: &Api, now: i64) -> api::ActiveModel {
    api::ActiveModel {
        api_id: Set(api.id.as_str().to_owned()),
        resource: Set(api.resource.clone()),
        scopes: Set(api.scopes.as_ref().map(ToString::to_string)),
        token_ttl_secs: Set(api.token_ttl_secs.and_then(|ttl| i32::try_from(ttl).ok())),
        grant_types: Set(api.grant_types.as_ref().map(|grants| {
            grants
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn to_domain(row: api::Model) -> Result<Api, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("api {}: {what}", row.api_id));
    Ok(Api {
        id: Audience::parse(&row.api_id).map_err(|_| corrupt("api_id"))?,
        resource: row.resource.clone(),
        scopes: row
            .scopes
            .as_deref()
            .map(|scopes| ScopeSet::parse(scopes).map_err(|_| corrupt("scopes")))
            .transpose()?,
        token_ttl_secs: row
            .token_ttl_secs
            .map(|ttl| u32::try_from(ttl).map_err(|_| corrupt("token_ttl_secs")))
            .transpose()?,
        grant_types: row
            .grant_types
            .as_deref()
            .map(|grants| {
                grants
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<BTreeSet<GrantType>, _>>()
                    .map_err(|_| corrupt("grant_types"))
            })
            .transpose()?,
    })
}
