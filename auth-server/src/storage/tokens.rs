//! Refresh tokens (hashed, chained) and revoked access-token ids.
//!
//! Every rotation and every revocation first updates the chain's row in `refresh_chains`: on
//! PostgreSQL that row lock serializes them per chain (a revocation waits for a rotation in
//! flight and then sees the token it inserted; a rotation after a revocation finds the chain
//! revoked), and on SQLite the first write takes the database's write lock.

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};

use super::Db;
use super::entities::refresh_chain::{self, Entity as RefreshChains};
use super::entities::refresh_token::{self, Column, Entity as RefreshTokens};
use super::entities::revoked_access_token::{self, Entity as RevokedAccessTokens};
use crate::stores::{Exchange, RefreshTokenRecord, StoreError, TokenStore};

#[derive(Clone)]
pub struct TokenRepository {
    db: Db,
}

impl TokenRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Revokes the chains matching `chains` and their refresh tokens (`tokens`), and the access
    /// tokens issued with them.
    async fn revoke_where(&self, chains: Chains, now: i64) -> Result<u64, StoreError> {
        self.db
            .run(async {
                let txn = self.db.conn().begin().await?;
                let revoked = revoke_in(&txn, &chains, now).await?;
                txn.commit().await?;
                Ok(revoked)
            })
            .await
    }
}

/// Which chains to revoke, as conditions on both tables.
struct Chains {
    chains: sea_orm::Condition,
    tokens: sea_orm::Condition,
}

fn chain(chain_id: &str) -> Chains {
    Chains {
        chains: sea_orm::Condition::all().add(refresh_chain::Column::ChainId.eq(chain_id)),
        tokens: sea_orm::Condition::all().add(Column::ChainId.eq(chain_id)),
    }
}

async fn revoke_in(txn: &impl ConnectionTrait, which: &Chains, now: i64) -> Result<u64, DbErr> {
    // The chain rows first: this waits for any rotation of them in flight, so the statements
    // below see the tokens it inserted.
    RefreshChains::update_many()
        .col_expr(refresh_chain::Column::RevokedAt, now.into())
        .filter(which.chains.clone())
        .filter(refresh_chain::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    let filter = which.tokens.clone();
    let access: Vec<(Option<String>, Option<i64>)> = RefreshTokens::find()
        .select_only()
        .column(Column::AccessJti)
        .column(Column::AccessExpiresAt)
        .filter(filter.clone())
        .filter(Column::AccessExpiresAt.gt(now))
        .into_tuple()
        .all(txn)
        .await?;
    for (jti, expires_at) in access {
        if let (Some(jti), Some(expires_at)) = (jti, expires_at) {
            insert_revoked_access(txn, &jti, expires_at).await?;
        }
    }
    let result = RefreshTokens::update_many()
        .col_expr(Column::RevokedAt, now.into())
        .filter(filter)
        .filter(Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(result.rows_affected)
}

async fn insert_revoked_access(
    db: &impl ConnectionTrait,
    jti: &str,
    expires_at: i64,
) -> Result<(), DbErr> {
    RevokedAccessTokens::insert(revoked_access_token::ActiveModel {
        jti: Set(jti.to_owned()),
        expires_at: Set(expires_at),
    })
    .on_conflict(
        OnConflict::column(revoked_access_token::Column::Jti)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Takes the chain's row for a rotation: false if the chain is revoked. A chain without a row
/// (a token stored by an older version during a rolling upgrade) gets one first.
async fn hold_chain(
    txn: &impl ConnectionTrait,
    token: &RefreshTokenRecord,
    now: i64,
) -> Result<bool, DbErr> {
    let update = || {
        RefreshChains::update_many()
            .col_expr(refresh_chain::Column::RotatedAt, now.into())
            .filter(refresh_chain::Column::ChainId.eq(token.chain_id.as_str()))
            .filter(refresh_chain::Column::RevokedAt.is_null())
    };
    if update().exec(txn).await?.rows_affected == 1 {
        return Ok(true);
    }
    if insert_chain(txn, token).await? == 0 {
        return Ok(false);
    }
    Ok(update().exec(txn).await?.rows_affected == 1)
}

/// Stores the chain of `token` unless it exists; how many rows were inserted.
async fn insert_chain(
    txn: &impl ConnectionTrait,
    token: &RefreshTokenRecord,
) -> Result<u64, DbErr> {
    let inserted = RefreshChains::insert(refresh_chain::ActiveModel {
        chain_id: Set(token.chain_id.clone()),
        client_id: Set(token.client_id.clone()),
        username: Set(token.username.clone()),
        audience: Set(token.audience.clone()),
        created_at: Set(token.created_at),
        expires_at: Set(token.chain_expires_at),
        rotated_at: Set(None),
        revoked_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(refresh_chain::Column::ChainId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(inserted)
}

#[async_trait]
impl TokenStore for TokenRepository {
    async fn find_refresh(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        Ok(self
            .db
            .run(RefreshTokens::find_by_id(token_hash).one(self.db.conn()))
            .await?
            .map(to_record))
    }

    async fn insert_refresh(&self, record: &RefreshTokenRecord) -> Result<(), StoreError> {
        self.db
            .run(async {
                let txn = self.db.conn().begin().await?;
                insert_chain(&txn, record).await?;
                RefreshTokens::insert(to_active(record)).exec(&txn).await?;
                txn.commit().await
            })
            .await
    }

    async fn exchange_refresh(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> Result<Exchange, StoreError> {
        self.db
            .run(async {
                let txn = self.db.conn().begin().await?;
                if !hold_chain(&txn, new, now).await? {
                    // Revoked (perhaps while this rotation waited for the row).
                    revoke_in(&txn, &chain(&new.chain_id), now).await?;
                    txn.commit().await?;
                    return Ok(Exchange::Reused);
                }
                let marked = RefreshTokens::update_many()
                    .col_expr(Column::UsedAt, now.into())
                    .filter(Column::TokenHash.eq(old_hash))
                    .filter(Column::UsedAt.is_null())
                    .filter(Column::RevokedAt.is_null())
                    .exec(&txn)
                    .await?;
                if marked.rows_affected != 1 {
                    // Used or revoked meanwhile: reuse, or a concurrent exchange.
                    revoke_in(&txn, &chain(&new.chain_id), now).await?;
                    txn.commit().await?;
                    return Ok(Exchange::Reused);
                }
                RefreshTokens::insert(to_active(new)).exec(&txn).await?;
                txn.commit().await?;
                Ok(Exchange::Rotated)
            })
            .await
    }

    async fn revoke_chain(&self, chain_id: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke_where(chain(chain_id), now).await
    }

    async fn revoke_user(&self, username: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke_where(
            Chains {
                chains: sea_orm::Condition::all().add(refresh_chain::Column::Username.eq(username)),
                tokens: sea_orm::Condition::all().add(Column::Username.eq(username)),
            },
            now,
        )
        .await
    }

    async fn revoke_client(&self, client_id: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke_where(
            Chains {
                chains: sea_orm::Condition::all()
                    .add(refresh_chain::Column::ClientId.eq(client_id)),
                tokens: sea_orm::Condition::all().add(Column::ClientId.eq(client_id)),
            },
            now,
        )
        .await
    }

    async fn revoke_access(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        self.db
            .run(insert_revoked_access(self.db.conn(), jti, expires_at))
            .await
    }

    async fn is_access_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .run(RevokedAccessTokens::find_by_id(jti).one(self.db.conn()))
            .await?
            .is_some())
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.db
            .run(async {
                let refresh = RefreshTokens::delete_many()
                    .filter(Column::ExpiresAt.lt(now))
                    .filter(
                        sea_orm::Condition::any()
                            .add(Column::AccessExpiresAt.is_null())
                            .add(Column::AccessExpiresAt.lt(now)),
                    )
                    .exec(self.db.conn())
                    .await?;
                // A chain goes once it has ended and none of its tokens is left.
                let chains = RefreshChains::delete_many()
                    .filter(refresh_chain::Column::ExpiresAt.lt(now))
                    .filter(
                        refresh_chain::Column::ChainId.not_in_subquery(
                            sea_orm::sea_query::Query::select()
                                .column(Column::ChainId)
                                .from(RefreshTokens)
                                .to_owned(),
                        ),
                    )
                    .exec(self.db.conn())
                    .await?;
                let access = RevokedAccessTokens::delete_many()
                    .filter(revoked_access_token::Column::ExpiresAt.lt(now))
                    .exec(self.db.conn())
                    .await?;
                Ok(refresh.rows_affected + chains.rows_affected + access.rows_affected)
            })
            .await
    }
}

fn to_active(r: &RefreshTokenRecord) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(r.token_hash.clone()),
        chain_id: Set(r.chain_id.clone()),
        client_id: Set(r.client_id.clone()),
        username: Set(r.username.clone()),
        scope: Set(r.scope.clone()),
        audience: Set(r.audience.clone()),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        chain_expires_at: Set(r.chain_expires_at),
        used_at: Set(r.used_at),
        revoked_at: Set(r.revoked_at),
        access_jti: Set(r.access_jti.clone()),
        access_expires_at: Set(r.access_expires_at),
    }
}

fn to_record(m: refresh_token::Model) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: m.token_hash,
        chain_id: m.chain_id,
        client_id: m.client_id,
        username: m.username,
        scope: m.scope,
        audience: m.audience,
        created_at: m.created_at,
        expires_at: m.expires_at,
        chain_expires_at: m.chain_expires_at,
        used_at: m.used_at,
        revoked_at: m.revoked_at,
        access_jti: m.access_jti,
        access_expires_at: m.access_expires_at,
    }
}
