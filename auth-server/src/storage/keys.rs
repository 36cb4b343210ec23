//! Signing-keys table and the lifecycle transitions that must be atomic across instances.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    SqlErr, TransactionTrait,
};

use super::StorageError;
use super::entities::signing_key::{self, Column, Entity as SigningKeys};
use crate::crypto::{KeyMaterial, SigningAlgorithm};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Pending,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [KeyState::Pending, KeyState::Active, KeyState::Retired]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub state: KeyState,
    pub sealed_private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub activate_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

#[derive(Clone)]
pub struct KeyRepository {
    db: DatabaseConnection,
}

impl KeyRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Every stored key, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, StorageError> {
        SigningKeys::find()
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Kid)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Stores the very first key as active; `Conflict` if another instance stored one first
    /// (nothing is retired, so the unique index on the active state decides).
    pub async fn insert_first_active(
        &self,
        key: &KeyMaterial,
        now: i64,
    ) -> Result<(), StorageError> {
        let mut row = to_active(key, KeyState::Active, now, now);
        row.activated_at = Set(Some(now));
        match SigningKeys::insert(row).exec(&self.db).await {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(StorageError::Conflict)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Adds a key that will sign from `activate_at` on; `Conflict` if a rotation is already
    /// pending (one at a time, so two instances never schedule two).
    pub async fn insert_pending_once(
        &self,
        key: &KeyMaterial,
        now: i64,
        activate_at: i64,
    ) -> Result<(), StorageError> {
        match SigningKeys::insert(to_active(key, KeyState::Pending, now, activate_at))
            .exec(&self.db)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(StorageError::Conflict)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Makes `key` the active key at once, retiring the current one, in one transaction.
    /// `Conflict` if another instance activated a key meanwhile.
    pub async fn insert_active(&self, key: &KeyMaterial, now: i64) -> Result<(), StorageError> {
        let txn = self.db.begin().await?;
        retire_active(&txn, now).await?;
        let mut row = to_active(key, KeyState::Active, now, now);
        row.activated_at = Set(Some(now));
        match SigningKeys::insert(row).exec(&txn).await {
            Ok(_) => {}
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(StorageError::Conflict);
            }
            Err(err) => return Err(err.into()),
        }
        txn.commit().await?;
        Ok(())
    }

    /// Activates the earliest pending key that is due and retires the active one. Returns the
    /// new active kid, or `None` when nothing was due or another instance did it first.
    pub async fn promote_due(&self, now: i64) -> Result<Option<String>, StorageError> {
        let txn = self.db.begin().await?;
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
            Ok(_) => Ok(None),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Removes retired keys retired before `cutoff` (every token they signed has expired).
    pub async fn delete_retired_before(&self, cutoff: i64) -> Result<u64, StorageError> {
        let result = SigningKeys::delete_many()
            .filter(Column::State.eq(KeyState::Retired.as_str()))
            .filter(Column::RetiredAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

async fn retire_active(txn: &sea_orm::DatabaseTransaction, now: i64) -> Result<(), StorageError> {
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
    }
}

fn to_record(row: signing_key::Model) -> Result<KeyRecord, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("signing key {}: {what}", row.kid));
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
    })
}
