//! Clients table: domain `Client` in, domain `Client` out.

use std::collections::BTreeSet;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, SqlErr,
};

use super::StorageError;
use super::entities::client::{self, Entity as Clients};
use crate::domain::{Audience, Client, ClientId, GrantType, NewClient, ScopeSet};

#[derive(Clone)]
pub struct ClientRepository {
    db: DatabaseConnection,
}

impl ClientRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn find(&self, id: &ClientId) -> Result<Option<Client>, StorageError> {
        Clients::find_by_id(id.as_str())
            .one(&self.db)
            .await?
            .map(to_domain)
            .transpose()
    }

    pub async fn list(&self) -> Result<Vec<Client>, StorageError> {
        Clients::find()
            .order_by_asc(client::Column::ClientId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    /// Adds a client; `Conflict` if the id is taken.
    pub async fn insert(&self, new: &NewClient, now: i64) -> Result<(), StorageError> {
        match Clients::insert(to_active(new, now)).exec(&self.db).await {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(StorageError::Conflict)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Creates the client or makes the stored one match `new` (bootstrap clients from config).
    pub async fn upsert(&self, new: &NewClient, now: i64) -> Result<(), StorageError> {
        Clients::insert(to_active(new, now))
            .on_conflict(
                OnConflict::column(client::Column::ClientId)
                    .update_columns([
                        client::Column::SecretHash,
                        client::Column::Scopes,
                        client::Column::Audiences,
                        client::Column::GrantTypes,
                        client::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Returns false if there was no such client.
    pub async fn remove(&self, id: &ClientId) -> Result<bool, StorageError> {
        let result = Clients::delete_by_id(id.as_str()).exec(&self.db).await?;
        Ok(result.rows_affected == 1)
    }

    /// Returns false if there was no such client.
    pub async fn set_secret_hash(
        &self,
        id: &ClientId,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let result = Clients::update_many()
            .col_expr(client::Column::SecretHash, secret_hash.into())
            .col_expr(client::Column::UpdatedAt, now.into())
            .filter(client::Column::ClientId.eq(id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

fn join<T>(items: impl IntoIterator<Item = T>, name: impl Fn(&T) -> &str) -> String {
    items
        .into_iter()
        .map(|i| name(&i).to_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn to_active(new: &NewClient, now: i64) -> client::ActiveModel {
    client::ActiveModel {
        client_id: Set(new.id.as_str().to_owned()),
        secret_hash: Set(new.secret_hash.clone()),
        scopes: Set(new.scopes.to_string()),
        audiences: Set(join(new.audiences.iter(), |a| a.as_str())),
        grant_types: Set(join(new.grant_types.iter(), |g| g.as_str())),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn to_domain(row: client::Model) -> Result<Client, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("client {}: {what}", row.client_id));
    Ok(Client {
        id: ClientId::parse(&row.client_id).map_err(|_| corrupt("client_id"))?,
        secret_hash: row.secret_hash.clone(),
        scopes: ScopeSet::parse(&row.scopes).map_err(|_| corrupt("scopes"))?,
        audiences: row
            .audiences
            .split_whitespace()
            .map(Audience::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("audiences"))?,
        grant_types: row
            .grant_types
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<BTreeSet<GrantType>, _>>()
            .map_err(|_| corrupt("grant_types"))?,
    })
}
