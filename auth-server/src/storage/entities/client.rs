//! A registered OAuth client.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// argon2id PHC string.
    pub secret_hash: String,
    /// Space-separated.
    pub scopes: String,
    /// Space-separated, the default first.
    pub audiences: String,
    /// Space-separated.
    pub grant_types: String,
    /// `client_secret`, `private_key_jwt` or `federated`.
    pub auth_method: String,
    /// `private_key_jwt`: the client's public keys, a JWKS document (or `jwks_uri`).
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// `federated`: the trusted issuer and subject of the one external identity.
    pub federated_issuer: Option<String>,
    pub federated_subject: Option<String>,
    /// Its access tokens must be DPoP-bound.
    pub dpop_bound: bool,
    /// Token exchange targets (RFC 8693), space-separated, the default first.
    pub exchange_to: String,
    /// Its access tokens' longest lifetime; NULL: the server's.
    pub token_ttl_secs: Option<i32>,
    /// Static claims of its tokens, a JSON object.
    pub claims: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
