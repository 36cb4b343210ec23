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
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
