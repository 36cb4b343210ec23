//! Each signing-key row carries an HMAC under a key derived from the key-encryption key (issue
//! 11, finding 7). Existing rows get theirs at the next start of an instance holding the
//! key-encryption key, once their sealed private key is found to open and to match the public
//! part; a row that fails is never published.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Mac,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .add_column(ColumnDef::new(SigningKeys::Mac).string_len(64).null())
                    .to_owned(),
            )
            .await
    }
}
