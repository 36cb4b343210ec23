//! One refresh chain: the tokens descending from one login. Rotation and revocation both
//! update this row first, which serializes them per chain.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_chains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chain_id: String,
    pub client_id: String,
    pub username: String,
    pub audience: String,
    pub created_at: i64,
    /// When the chain ends, however often it is refreshed.
    pub expires_at: i64,
    /// The last rotation (written so that a rotation holds the row).
    pub rotated_at: Option<i64>,
    /// Once set, no token of the chain is refreshed again.
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
