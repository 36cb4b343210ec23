//! A registered API (resource server).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "apis")]
pub struct Model {
    /// The `aud` of its tokens.
    #[sea_orm(primary_key, auto_increment = false)]
    pub api_id: String,
    /// Its RFC 8707 resource URI, normalized; unique.
    pub resource: Option<String>,
    /// The scopes it defines, space-separated; NULL: not declared (an audience registered by
    /// the upgrade).
    pub scopes: Option<String>,
    /// Its tokens' longest lifetime; NULL: no limit of its own.
    pub token_ttl_secs: Option<i32>,
    /// The grants its tokens may come from, space-separated; NULL: any.
    pub grant_types: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
