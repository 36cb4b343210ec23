//! Refresh tokens (hashed, chained) and revoked access-token ids.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};

use super::StorageError;
use super::entities::refresh_token::{self, Column, Entity as RefreshTokens};
use super::entities::revoked_access_token::{self, Entity as RevokedAccessTokens};

/// A stored refresh token (never its value: `token_hash` is its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub chain_id: String,
    pub client_id: String,
    pub username: String,
    pub scope: String,
    pub audience: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub chain_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The outcome of exchanging a refresh token for a new one.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The old token is now used and the new one stored.
    Rotated,
    /// The old token was already used or revoked: the chain is now revoked.
    Reused,
}

#[derive(Clone)]
pub struct TokenRepository {
    db: DatabaseConnection,
}

impl TokenRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn find_refresh(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StorageError> {
        Ok(RefreshTokens::find_by_id(token_hash)
            .one(&self.db)
            .await?
            .map(to_record))
    }

    pub async fn insert_refresh(&self, record: &RefreshTokenRecord) -> Result<(), StorageError> {
        RefreshTokens::insert(to_active(record))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Marks `old` used and stores `new`, in one transaction; if `old` was used or revoked
    /// meanwhile (reuse, or a concurrent exchange), revokes the whole chain instead.
    pub async fn exchange_refresh(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> Result<Exchange, StorageError> {
        let txn = self.db.begin().await?;
        let marked = RefreshTokens::update_many()
            .col_expr(Column::UsedAt, now.into())
            .filter(Column::TokenHash.eq(old_hash))
            .filter(Column::UsedAt.is_null())
            .filter(Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            txn.rollback().await?;
            self.revoke_chain(&new.chain_id, now).await?;
            return Ok(Exchange::Reused);
        }
        RefreshTokens::insert(to_active(new)).exec(&txn).await?;
        txn.commit().await?;
        Ok(Exchange::Rotated)
    }

    pub async fn revoke_chain(&self, chain_id: &str, now: i64) -> Result<u64, StorageError> {
        let result = RefreshTokens::update_many()
            .col_expr(Column::RevokedAt, now.into())
            .filter(Column::ChainId.eq(chain_id))
            .filter(Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    pub async fn revoke_user(&self, username: &str, now: i64) -> Result<u64, StorageError> {
        let result = RefreshTokens::update_many()
            .col_expr(Column::RevokedAt, now.into())
            .filter(Column::Username.eq(username))
            .filter(Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Remembers a revoked access token until it expires.
    pub async fn revoke_access(&self, jti: &str, expires_at: i64) -> Result<(), StorageError> {
        RevokedAccessTokens::insert(revoked_access_token::ActiveModel {
            jti: Set(jti.to_owned()),
            expires_at: Set(expires_at),
        })
        .on_conflict(
            OnConflict::column(revoked_access_token::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    pub async fn is_access_revoked(&self, jti: &str) -> Result<bool, StorageError> {
        Ok(RevokedAccessTokens::find_by_id(jti)
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Deletes what can no longer matter: expired refresh tokens and revocations of expired
    /// access tokens.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        let refresh = RefreshTokens::delete_many()
            .filter(Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        let access = RevokedAccessTokens::delete_many()
            .filter(revoked_access_token::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        Ok(refresh.rows_affected + access.rows_affected)
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
    }
}
