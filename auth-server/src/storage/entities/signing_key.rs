//! A signing key and where it is in its lifecycle (pending → active → retired).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub alg: String,
    /// `pending`, `active`, `retired` or `revoked`; at most one row is `active` (a partial unique index).
    pub state: String,
    /// The private JWK sealed as a JWE (`dir`, `A256GCM`) under the key-encryption key.
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    /// When a pending key becomes active.
    pub activate_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    /// HMAC of kid, alg, private_key and public_jwk under a key derived from the
    /// key-encryption key; NULL only on rows from before it existed, until an instance
    /// holding the key-encryption key checks them.
    pub mac: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
