//! A refresh token, stored only as the SHA-256 of its value. Tokens descending from one login
//! share a `chain_id`, so reuse of a rotated token can revoke them all.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Hex SHA-256 of the token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub chain_id: String,
    pub client_id: String,
    pub username: String,
    /// Space-separated.
    pub scope: String,
    pub audience: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the whole chain ends, however often it is refreshed.
    pub chain_expires_at: i64,
    /// Set when exchanged for a new pair: presenting it again is reuse.
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The `jti` of the access token issued with this refresh token: revoking the chain
    /// revokes it too (introspection then says it is inactive).
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
