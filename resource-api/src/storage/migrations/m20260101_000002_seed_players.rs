//! Seeds the 26 players of the squad, with the seed data's v5 ids.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{TransactionTrait, prelude::Date},
};
use uuid::Uuid;

use crate::storage::seed_players::SEED_PLAYERS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut insert = Query::insert();
        insert.into_table("players").columns([
            "id",
            "squad_number",
            "first_name",
            "middle_name",
            "last_name",
            "date_of_birth",
            "position",
            "abbr_position",
            "team",
            "league",
            "starting11",
        ]);
        for player in &SEED_PLAYERS {
            let id = Uuid::parse_str(player.id).map_err(|err| DbErr::Migration(err.to_string()))?;
            let date_of_birth = Date::parse_from_str(player.date_of_birth, "%Y-%m-%d")
                .map_err(|err| DbErr::Migration(err.to_string()))?;
            insert
                .values([
                    id.into(),
                    player.squad_number.into(),
                    player.first_name.into(),
                    player.middle_name.into(),
                    player.last_name.into(),
                    date_of_birth.into(),
                    player.position.into(),
                    player.abbr_position.into(),
                    player.team.into(),
                    player.league.into(),
                    player.starting11.into(),
                ])
                .map_err(|err| DbErr::Migration(err.to_string()))?;
        }
        let db = manager.get_connection();
        let transaction = db.begin().await?;
        transaction.execute(&insert).await?;
        transaction.commit().await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("migrations are forward-only".into()))
    }
}
