//! Clients that authenticate without a shared secret (`private_key_jwt`: keys inline or at a
//! `jwks_uri`; workload identity federation: one external identity), clients whose tokens must
//! be DPoP-bound, and the single-use identifiers (assertion and DPoP proof `jti`s) every
//! instance shares. Existing clients keep `client_secret`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    AuthMethod,
    Jwks,
    JwksUri,
    FederatedIssuer,
    FederatedSubject,
    DpopBound,
}

#[derive(DeriveIden)]
enum UsedJtis {
    Table,
    Key,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            ColumnDef::new(Clients::AuthMethod)
                .string_len(32)
                .not_null()
                .default("client_secret")
                .to_owned(),
            ColumnDef::new(Clients::Jwks).text().null().to_owned(),
            ColumnDef::new(Clients::JwksUri)
                .string_len(2048)
                .null()
                .to_owned(),
            ColumnDef::new(Clients::FederatedIssuer)
                .string_len(2048)
                .null()
                .to_owned(),
            ColumnDef::new(Clients::FederatedSubject)
                .string_len(512)
                .null()
                .to_owned(),
            ColumnDef::new(Clients::DpopBound)
                .boolean()
                .not_null()
                .default(false)
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
        // One client per external identity.
        manager
            .create_index(
                Index::create()
                    .name("clients_federated_identity")
                    .table(Clients::Table)
                    .col(Clients::FederatedIssuer)
                    .col(Clients::FederatedSubject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsedJtis::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(UsedJtis::Key)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(UsedJtis::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("used_jtis_expires_at")
                    .table(UsedJtis::Table)
                    .col(UsedJtis::ExpiresAt)
                    .to_owned(),
            )
            .await
    }
}
