use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    SecretHash,
    Scopes,
    Audiences,
    GrantTypes,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Clients::ClientId)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Clients::SecretHash).text().not_null())
                    .col(ColumnDef::new(Clients::Scopes).text().not_null())
                    .col(ColumnDef::new(Clients::Audiences).text().not_null())
                    .col(ColumnDef::new(Clients::GrantTypes).text().not_null())
                    .col(ColumnDef::new(Clients::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Clients::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }
}
