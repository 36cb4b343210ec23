//! Users table.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, SqlErr,
};

use super::StorageError;
use super::entities::user::{self, Column, Entity as Users};
use crate::domain::{ScopeSet, User, Username};

#[derive(Clone)]
pub struct UserRepository {
    db: DatabaseConnection,
}

impl UserRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn find(&self, username: &Username) -> Result<Option<User>, StorageError> {
        Users::find_by_id(username.as_str())
            .one(&self.db)
            .await?
            .map(to_domain)
            .transpose()
    }

    pub async fn list(&self) -> Result<Vec<User>, StorageError> {
        Users::find()
            .order_by_asc(Column::Username)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    /// `Conflict` if the username is taken.
    pub async fn insert(&self, new: &User, now: i64) -> Result<(), StorageError> {
        match Users::insert(to_active(new, now)).exec(&self.db).await {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(StorageError::Conflict)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Creates or updates a user from configuration.
    pub async fn upsert(&self, new: &User, now: i64) -> Result<(), StorageError> {
        Users::insert(to_active(new, now))
            .on_conflict(
                OnConflict::column(Column::Username)
                    .update_columns([
                        Column::PasswordHash,
                        Column::Scopes,
                        Column::Active,
                        Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Returns false if there was no such user.
    pub async fn set_active(
        &self,
        username: &Username,
        active: bool,
        now: i64,
    ) -> Result<bool, StorageError> {
        let result = Users::update_many()
            .col_expr(Column::Active, active.into())
            .col_expr(Column::UpdatedAt, now.into())
            .filter(Column::Username.eq(username.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Returns false if there was no such user.
    pub async fn remove(&self, username: &Username) -> Result<bool, StorageError> {
        let result = Users::delete_by_id(username.as_str())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

fn to_active(new: &User, now: i64) -> user::ActiveModel {
    user::ActiveModel {
        username: Set(new.username.as_str().to_owned()),
        password_hash: Set(new.password_hash.clone()),
        scopes: Set(new.scopes.to_string()),
        active: Set(new.active),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn to_domain(row: user::Model) -> Result<User, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("user {}: {what}", row.username));
    Ok(User {
        username: Username::parse(&row.username).map_err(|_| corrupt("username"))?,
        password_hash: row.password_hash.clone(),
        scopes: ScopeSet::parse(&row.scopes).map_err(|_| corrupt("scopes"))?,
        active: row.active,
    })
}
