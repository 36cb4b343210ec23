//! Per-client policy: token exchange (RFC 8693), the APIs a client may get tokens for on
//! behalf of a subject; a client's own access-token lifetime; its static claims. Existing
//! clients get no exchange target, the server's lifetime and no claims, so nothing they could
//! do before changes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    ExchangeTo,
    TokenTtlSecs,
    Claims,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            ColumnDef::new(Clients::ExchangeTo)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Clients::TokenTtlSecs)
                .integer()
                .null()
                .to_owned(),
            ColumnDef::new(Clients::Claims)
                .text()
                .not_null()
                .default("{}")
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
