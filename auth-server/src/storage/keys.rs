//! Signing-keys table and the lifecycle transitions that must be atomic across instances.

use async_trait::async_trait;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, SqlErr,
    TransactionTrait,
};

use super::Db;
use super::entities::signing_key::{self, Column, Entity as SigningKeys};
use crate::crypto::{KeyMaterial, SigningAlgorithm};
use crate::stores::{KeyRecord, KeyState, KeyStore, StoreError};

#[derive(Clone)]
pub struct KeyRepository {
    db: Db,
}

impl KeyRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl KeyStore for KeyRepository {
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.db
            .run(
                SigningKeys::find()
                    .order_by_asc(Column::CreatedAt)
                    .order_by_asc(Column::Kid)
                    .all(self.db.conn()),
            )
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Nothing is retired yet, so the unique index on the active state decides a race.
    async fn insert_first_active(&self, key: &KeyMaterial, now: i64) -> Result<(), StoreError> {
        let mut row = to_active(key, KeyState::Active, now, now);
        row.activated_at = Set(Some(now));
        self.db
            .run(SigningKeys::insert(row).exec(self.db.conn()))
            .await?;
        Ok(())
    }

    /// One pending key at a time (a unique index), so two instances never schedule two.
    async fn insert_pending_once(
        &self,
        key: &KeyMaterial,
        now: i64,
        activate_at: i64,
    ) -> Result<(), StoreError> {
        let row = to_active(key, KeyState::Pending, now, activate_at);
        self.db
            .run(SigningKeys::insert(row).exec(self.db.conn()))
            .await?;
        Ok(())
    }

    async fn insert_active(&self, key: &KeyMaterial, now: i64) -> Result<(), StoreError> {
        let mut row = to_active(key, KeyState::Active, now, now);
        row.activated_at = Set(Some(now));
        self.db
            .run(async {
                let txn = self.db.conn().begin().await?;
                retire_active(&txn, now).await?;
                SigningKeys::insert(row).exec(&txn).await?;
                txn.commit().await
            })
            .await
    }

    async fn promote_due(&self, now: i64) -> Result<Option<String>, StoreError> {
        self.db
            .run(async {
                let txn = self.db.conn().begin().await?;
                let due = SigningKeys::find()
                    .filter(Column::State.eq(KeyState::Pending.as_str()))
                    .filter(Column::ActivateAt.lte(now))
                    .order_by_asc(Column::ActivateAt)
                    .one(&txn)
                    .await?;
                let Some(due) = due else {
                    return Ok(None);
                };
                retire_active(&txn, now).await?;
                let promoted = SigningKeys::update_many()
                    .col_expr(Column::State, KeyState::Active.as_str().into())
                    .col_expr(Column::ActivatedAt, now.into())
                    .filter(Column::Kid.eq(due.kid.as_str()))
                    .filter(Column::State.eq(KeyState::Pending.as_str()))
                    .exec(&txn)
                    .await;
                match promoted {
                    Ok(r) if r.rows_affected == 1 => {
                        txn.commit().await?;
                        Ok(Some(due.kid))
                    }
                    // Another instance promoted it first.
                    Ok(_) => Ok(None),
                    Err(err)
                        if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            })
            .await
    }

    async fn set_mac(&self, kid: &str, mac: &str) -> Result<(), StoreError> {
        self.db
            .run(
                SigningKeys::update_many()
                    .col_expr(Column::Mac, mac.into())
                    .filter(Column::Kid.eq(kid))
                    .filter(Column::Mac.is_null())
                    .exec(self.db.conn()),
            )
            .await?;
        Ok(())
    }

    async fn revoke(&self, kid: &str, now: i64) -> Result<bool, StoreError> {
        let result = self
            .db
            .run(
                SigningKeys::update_many()
                    .col_expr(Column::State, KeyState::Revoked.as_str().into())
                    .col_expr(Column::RetiredAt, now.into())
                    .filter(Column::Kid.eq(kid))
                    .exec(self.db.conn()),
            )
            .await?;
        Ok(result.rows_affected == 1)
    }

    async fn delete_retired_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let delete = SigningKeys::delete_many()
            .filter(Column::State.eq(KeyState::Retired.as_str()))
            .filter(Column::RetiredAt.lt(cutoff))
            .exec(self.db.conn());
        let result = self.db.run(delete).await?;
        Ok(result.rows_affected)
    }
}

async fn retire_active(txn: &sea_orm::DatabaseTransaction, now: i64) -> Result<(), DbErr> {
    SigningKeys::update_many()
        .col_expr(Column::State, KeyState::Retired.as_str().into())
        .col_expr(Column::RetiredAt, now.into())
        .filter(Column::State.eq(KeyState::Active.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

fn to_active(
    key: &KeyMaterial,
    state: KeyState,
    now: i64,
    activate_at: i64,
) -> signing_key::ActiveModel {
    signing_key::ActiveModel {
        kid: Set(key.kid.clone()),
        alg: Set(key.alg.as_str().to_owned()),
        state: Set(state.as_str().to_owned()),
        private_key: Set(key.sealed_private_key.clone()),
        public_jwk: Set(key.public_jwk.clone()),
        created_at: Set(now),
        activate_at: Set(activate_at),
        activated_at: Set(None),
        retired_at: Set(None),
        mac: Set(Some(key.mac.clone())),
    }
}

fn to_record(row: signing_key::Model) -> Result<KeyRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("signing key {}: {what}", row.kid));
    Ok(KeyRecord {
        alg: SigningAlgorithm::parse(&row.alg).ok_or_else(|| corrupt("alg"))?,
        state: KeyState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
        kid: row.kid,
        sealed_private_key: row.private_key,
        public_jwk: row.public_jwk,
        created_at: row.created_at,
        activate_at: row.activate_at,
        activated_at: row.activated_at,
        retired_at: row.retired_at,
        mac: row.mac,
    })
}
