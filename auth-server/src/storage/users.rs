//! Users table.

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::Db;
use super::entities::user::{self, Column, Entity as Users};
use crate::domain::{ScopeSet, User, Username};
use crate::stores::{StoreError, UserStore};

#[derive(Clone)]
pub struct UserRepository {
    db: Db,
}

impl UserRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UserStore for UserRepository {
    async fn find(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.db
            .run(Users::find_by_id(username.as_str()).one(self.db.conn()))
            .await?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self) -> Result<Vec<User>, StoreError> {
        self.db
            .run(
                Users::find()
                    .order_by_asc(Column::Username)
                    .all(self.db.conn()),
            )
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn insert(&self, new: &User, now: i64) -> Result<(), StoreError> {
        self.db
            .run(Users::insert(to_active(new, now)).exec(self.db.conn()))
            .await?;
        Ok(())
    }

    async fn upsert(&self, new: &User, now: i64) -> Result<(), StoreError> {
        let upsert = Users::insert(to_active(new, now))
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
            .exec(self.db.conn());
        self.db.run(upsert).await?;
        Ok(())
    }

    async fn replace_password_hash(
        &self,
        username: &Username,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = Users::update_many()
            .col_expr(Column::PasswordHash, new.into())
            .col_expr(Column::UpdatedAt, now.into())
            .filter(Column::Username.eq(username.as_str()))
            .filter(Column::PasswordHash.eq(old))
            .exec(self.db.conn());
        let result = self.db.run(update).await?;
        Ok(result.rows_affected == 1)
    }

    async fn set_active(
        &self,
        username: &Username,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = Users::update_many()
            .col_expr(Column::Active, active.into())
            .col_expr(Column::UpdatedAt, now.into())
            .filter(Column::Username.eq(username.as_str()))
            .exec(self.db.conn());
        let result = self.db.run(update).await?;
        Ok(result.rows_affected == 1)
    }

    async fn remove(&self, username: &Username) -> Result<bool, StoreError> {
        let result = self
            .db
            .run(Users::delete_by_id(username.as_str()).exec(self.db.conn()))
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

fn to_domain(row: user::Model) -> Result<User, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", row.username));
    Ok(User {
        username: Username::parse(&row.username).map_err(|_| corrupt("username"))?,
        password_hash: row.password_hash.clone(),
        scopes: ScopeSet::parse(&row.scopes).map_err(|_| corrupt("scopes"))?,
        active: row.active,
    })
}
