//! The change log: every write to the clients table adds a row in the same transaction, so that
//! every instance learns which clients to drop from memory.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Changes {
    Table,
    Seq,
    Entity,
    EntityKey,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Changes::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(Changes::Seq)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Changes::Entity).string_len(16).not_null())
            .col(
                ColumnDef::new(Changes::EntityKey)
                    .string_len(512)
                    .not_null(),
            )
            .col(ColumnDef::new(Changes::ChangedAt).big_integer().not_null())
            .to_owned();
        manager.create_table(table).await?;
        let index = Index::create()
            .name("changes_changed_at")
            .table(Changes::Table)
            .col(Changes::ChangedAt)
            .if_not_exists()
            .to_owned();
        manager.create_index(index).await
    }
}
