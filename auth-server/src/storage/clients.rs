//! Clients table: domain `Client` in, domain `Client` out. Every write also records a change in
//! the change log (and, on PostgreSQL, notifies), in the same transaction, so that every
//! instance drops what it holds of that client.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::Db;
use super::apis::{all_apis, apis_named};
use super::changes::{Changed, write_logged};
use super::entities::client::{self, Entity as Clients};
use crate::domain::{
    Api, Audience, Client, ClientAuthentication, ClientId, ClientKeys, GrantType, NewClient,
    ScopeSet, StaticClaims,
};
use crate::stores::{ClientStore, StoreError};

#[derive(Clone)]
pub struct ClientRepository {
    db: Db,
}

impl ClientRepository {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Runs `write` and records the change of `id`, in one transaction.
    async fn write<T: Send>(
        &self,
        id: &ClientId,
        write: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<T, DbErr> + Send,
    ) -> Result<T, StoreError> {
        write_logged(&self.db, Changed::Client, id.as_str(), write).await
    }
}

#[async_trait]
impl ClientStore for ClientRepository {
    async fn find(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let Some(row) = self
            .db
            .run(Clients::find_by_id(id.as_str()).one(self.db.conn()))
            .await?
        else {
            return Ok(None);
        };
        let mut client = to_domain(row)?;
        let names = client.audiences.iter().chain(&client.exchange_to);
        let apis = apis_named(&self.db, names.map(|a| a.as_str())).await?;
        client.apis = apis.into_iter().map(Arc::new).collect();
        Ok(Some(Arc::new(client)))
    }

    async fn list(&self) -> Result<Vec<Client>, StoreError> {
        let apis: Vec<Arc<Api>> = all_apis(&self.db)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        self.db
            .run(
                Clients::find()
                    .order_by_asc(client::Column::ClientId)
                    .all(self.db.conn()),
            )
            .await?
            .into_iter()
            .map(|row| {
                let mut client = to_domain(row)?;
                client.apis = apis
                    .iter()
                    .filter(|api| {
                        client.audiences.contains(&api.id) || client.exchange_to.contains(&api.id)
                    })
                    .cloned()
                    .collect();
                Ok(client)
            })
            .collect()
    }

    async fn scopes_in_use(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = self
            .db
            .run(
                Clients::find()
                    .select_only()
                    .column(client::Column::Scopes)
                    .distinct()
                    .into_tuple()
                    .all(self.db.conn()),
            )
            .await?;
        let apis = all_apis(&self.db).await?;
        let api_scopes = apis.iter().flat_map(|api| {
            api.scopes
                .iter()
                .flat_map(|set| set.iter().map(|s| s.as_str()))
        });
        let scopes: HashSet<&str> = rows
            .iter()
            .flat_map(|s| s.split_whitespace())
            .chain(api_scopes)
            .collect();
        let mut scopes: Vec<String> = scopes.into_iter().map(str::to_owned).collect();
        scopes.sort_unstable();
        Ok(scopes)
    }

    async fn insert(&self, new: &NewClient, now: i64) -> Result<(), StoreError> {
        let row = to_active(new, now);
        self.write(&new.id, async |txn| {
            Clients::insert(row).exec(txn).await.map(drop)
        })
        .await
    }

    async fn upsert(&self, new: &NewClient, now: i64) -> Result<(), StoreError> {
        let row = to_active(new, now);
        self.write(&new.id, async |txn| {
            Clients::insert(row)
                .on_conflict(
                    OnConflict::column(client::Column::ClientId)
                        .update_columns([
                            client::Column::SecretHash,
                            client::Column::Scopes,
                            client::Column::Audiences,
                            client::Column::GrantTypes,
                            client::Column::AuthMethod,
                            client::Column::Jwks,
                            client::Column::JwksUri,
                            client::Column::FederatedIssuer,
                            client::Column::FederatedSubject,
                            client::Column::DpopBound,
                            client::Column::ExchangeTo,
                            client::Column::TokenTtlSecs,
                            client::Column::Claims,
                            client::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec(txn)
                .await
                .map(drop)
        })
        .await
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        self.write(id, async |txn| {
            let result = Clients::delete_by_id(id.as_str()).exec(txn).await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }

    async fn set_grants(&self, new: &NewClient, now: i64) -> Result<bool, StoreError> {
        let row = to_active(new, now);
        let id = &new.id;
        self.write(id, async |txn| {
            let result = Clients::update_many()
                .set(client::ActiveModel {
                    scopes: row.scopes,
                    audiences: row.audiences,
                    grant_types: row.grant_types,
                    exchange_to: row.exchange_to,
                    updated_at: row.updated_at,
                    ..Default::default()
                })
                .filter(client::Column::ClientId.eq(id.as_str()))
                .exec(txn)
                .await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }

    async fn set_secret_hash(
        &self,
        id: &ClientId,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(id, async |txn| {
            let result = Clients::update_many()
                .col_expr(client::Column::SecretHash, secret_hash.into())
                .col_expr(client::Column::UpdatedAt, now.into())
                .filter(client::Column::ClientId.eq(id.as_str()))
                .exec(txn)
                .await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }

    async fn replace_secret_hash(
        &self,
        id: &ClientId,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(id, async |txn| {
            let result = Clients::update_many()
                .col_expr(client::Column::SecretHash, new.into())
                .col_expr(client::Column::UpdatedAt, now.into())
                .filter(client::Column::ClientId.eq(id.as_str()))
                .filter(client::Column::SecretHash.eq(old))
                .exec(txn)
                .await?;
            Ok(result.rows_affected == 1)
        })
        .await
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
        auth_method: Set(new.authentication.method_name().to_owned()),
        jwks: Set(match &new.authentication {
            ClientAuthentication::PrivateKeyJwt(ClientKeys::Jwks(jwks)) => Some(jwks.clone()),
            _ => None,
        }),
        jwks_uri: Set(match &new.authentication {
            ClientAuthentication::PrivateKeyJwt(ClientKeys::JwksUri(uri)) => Some(uri.clone()),
            _ => None,
        }),
        federated_issuer: Set(match &new.authentication {
            ClientAuthentication::Federated { issuer, .. } => Some(issuer.clone()),
            _ => None,
        }),
        federated_subject: Set(match &new.authentication {
            ClientAuthentication::Federated { subject, .. } => Some(subject.clone()),
            _ => None,
        }),
        dpop_bound: Set(new.dpop_bound),
        exchange_to: Set(join(new.exchange_to.iter(), |a| a.as_str())),
        token_ttl_secs: Set(new.token_ttl_secs.and_then(|ttl| i32::try_from(ttl).ok())),
        claims: Set(serde_json::to_string(new.claims.as_map()).unwrap_or_else(|_| "{}".into())),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn to_domain(row: client::Model) -> Result<Client, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("client {}: {what}", row.client_id));
    let authentication = match (
        row.auth_method.as_str(),
        &row.jwks,
        &row.jwks_uri,
        &row.federated_issuer,
        &row.federated_subject,
    ) {
        ("client_secret", ..) => ClientAuthentication::Secret,
        ("private_key_jwt", Some(jwks), None, ..) => {
            ClientAuthentication::PrivateKeyJwt(ClientKeys::Jwks(jwks.clone()))
        }
        ("private_key_jwt", None, Some(uri), ..) => {
            ClientAuthentication::PrivateKeyJwt(ClientKeys::JwksUri(uri.clone()))
        }
        ("federated", _, _, Some(issuer), Some(subject)) => ClientAuthentication::Federated {
            issuer: issuer.clone(),
            subject: subject.clone(),
        },
        _ => return Err(corrupt("auth_method")),
    };
    Ok(Client {
        id: ClientId::parse(&row.client_id).map_err(|_| corrupt("client_id"))?,
        secret_hash: row.secret_hash.clone(),
        authentication,
        dpop_bound: row.dpop_bound,
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
        exchange_to: row
            .exchange_to
            .split_whitespace()
            .map(Audience::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("exchange_to"))?,
        token_ttl_secs: row
            .token_ttl_secs
            .map(|ttl| u32::try_from(ttl).map_err(|_| corrupt("token_ttl_secs")))
            .transpose()?,
        claims: serde_json::from_str(&row.claims)
            .ok()
            .and_then(|claims| StaticClaims::parse(claims).ok())
            .ok_or_else(|| corrupt("claims"))?,
        apis: Vec::new(),
    })
}
