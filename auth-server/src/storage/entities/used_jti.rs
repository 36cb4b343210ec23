//! A single-use identifier seen (a client assertion's or a DPoP proof's `jti`, hashed with what
//! scopes it), kept until it could no longer be accepted anyway.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "used_jtis")]
pub struct Model {
    /// Hex SHA-256.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
