//! One row per refresh chain (issue 11, finding 2). Rotation and revocation both take this row
//! first (a conditional update, which locks it on PostgreSQL), so a revocation waits for a
//! rotation in flight and sees the token it inserted, and a rotation after a revocation finds
//! the chain revoked. Existing chains are backfilled from their refresh tokens: a chain with
//! any revoked token is revoked.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshChains {
    Table,
    ChainId,
    ClientId,
    Username,
    Audience,
    CreatedAt,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshChains::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(RefreshChains::ChainId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::ClientId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::Username)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::Audience)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::RotatedAt)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(RefreshChains::RevokedAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("refresh_chains_client", RefreshChains::ClientId),
            ("refresh_chains_username", RefreshChains::Username),
            ("refresh_chains_expires", RefreshChains::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RefreshChains::Table)
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        // Portable SQL (SQLite and PostgreSQL): one row per chain already in use. MAX ignores
        // NULLs, so a chain is revoked if any of its tokens is (a race of the old code could
        // leave the newest token of a revoked chain live: this closes it too).
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO refresh_chains \
                   (chain_id, client_id, username, audience, created_at, expires_at, revoked_at) \
                 SELECT chain_id, MIN(client_id), MIN(username), MIN(audience), MIN(created_at), \
                        MAX(chain_expires_at), MAX(revoked_at) \
                 FROM refresh_tokens \
                 WHERE chain_id NOT IN (SELECT chain_id FROM refresh_chains) \
                 GROUP BY chain_id",
            )
            .await?;
        Ok(())
    }
}
