//! The `players` table.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "players")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub squad_number: i32,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub last_name: String,
    pub date_of_birth: Option<Date>,
    pub position: String,
    pub abbr_position: Option<String>,
    pub team: Option<String>,
    pub league: Option<String>,
    pub starting11: bool,
}

impl ActiveModelBehavior for ActiveModel {}
