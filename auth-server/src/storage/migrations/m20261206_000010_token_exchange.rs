//! Token exchange (RFC 8693): the APIs a client may get tokens for on behalf of a subject.
//! Existing clients get none, so nothing they could do before changes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    ExchangeTo,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::ExchangeTo)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await
    }
}
