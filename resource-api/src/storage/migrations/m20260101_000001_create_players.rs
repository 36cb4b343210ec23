//! The players table. Squad numbers are unique by an index, so two concurrent writers
//! cannot both take one number, and kept within 1–99 by a check.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const SQUAD_NUMBER_INDEX: &str = "ux_players_squad_number";

#[derive(DeriveIden)]
enum Players {
    Table,
    Id,
    SquadNumber,
    FirstName,
    MiddleName,
    LastName,
    DateOfBirth,
    Position,
    AbbrPosition,
    Team,
    League,
    Starting11,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Players::Table)
                    .col(pk_uuid(Players::Id))
                    .col(
                        integer(Players::SquadNumber)
                            .check(Expr::col(Players::SquadNumber).between(1, 99)),
                    )
                    .col(string(Players::FirstName))
                    .col(string_null(Players::MiddleName))
                    .col(string(Players::LastName))
                    .col(date_null(Players::DateOfBirth))
                    .col(string(Players::Position))
                    .col(string_null(Players::AbbrPosition))
                    .col(string_null(Players::Team))
                    .col(string_null(Players::League))
                    .col(boolean(Players::Starting11).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SQUAD_NUMBER_INDEX)
                    .table(Players::Table)
                    .col(Players::SquadNumber)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("migrations are forward-only".into()))
    }
}
