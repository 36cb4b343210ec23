//! APIs as registered entries (`apis`): an id (the `aud` of its tokens), a resource URI, the
//! scopes it defines, its own token lifetime and grants.
//!
//! Existing databases: every audience and exchange target a client names becomes an API with
//! undeclared scopes (NULL) and no policy of its own, so every client's tokens carry what they
//! carried before. Declaring an API's scopes (`auth-server apis update ID --scope …`, or
//! `[[apis]]`) is the operator's step, when they choose.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Apis {
    Table,
    ApiId,
    Resource,
    Scopes,
    TokenTtlSecs,
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
                    .table(Apis::Table)
                    // SQLite runs a migration outside a transaction: a retry after a failure
                    // half-way finds the table.
                    .if_not_exists()
                    .col(ColumnDef::new(Apis::ApiId).text().not_null().primary_key())
                    .col(ColumnDef::new(Apis::Resource).text().null())
                    .col(ColumnDef::new(Apis::Scopes).text().null())
                    .col(ColumnDef::new(Apis::TokenTtlSecs).integer().null())
                    .col(ColumnDef::new(Apis::GrantTypes).text().null())
                    .col(ColumnDef::new(Apis::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Apis::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("apis_resource")
                    .table(Apis::Table)
                    .col(Apis::Resource)
                    .unique()
                    .to_owned(),
            )
            .await?;

        let conn = manager.get_connection();
        let backend = manager.get_database_backend();
        let rows = conn
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT audiences, exchange_to FROM clients",
            ))
            .await?;
        let mut apis: BTreeSet<String> = BTreeSet::new();
        for row in rows {
            let audiences: String = row.try_get("", "audiences")?;
            let exchange_to: String = row.try_get("", "exchange_to")?;
            apis.extend(
                audiences
                    .split_whitespace()
                    .chain(exchange_to.split_whitespace())
                    .map(str::to_owned),
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                <i64 as std::convert::TryFrom<u64>>::try_from(d.as_secs()).unwrap_or(i64::MAX)
            });
        for id in apis {
            let mut insert = Query::insert();
            insert
                .into_table(Apis::Table)
                .columns([Apis::ApiId, Apis::CreatedAt, Apis::UpdatedAt])
                .values([id.into(), now.into(), now.into()])
                .map_err(|err| DbErr::Custom(err.to_string()))?
                .on_conflict(OnConflict::column(Apis::ApiId).do_nothing().to_owned());
            manager.exec_stmt(insert).await?;
        }
        Ok(())
    }
}
