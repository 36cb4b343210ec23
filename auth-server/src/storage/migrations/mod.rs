//! Forward-only migrations, run at every start; one file per migration.

use sea_orm_migration::prelude::*;

mod m20261122_000001_create_clients;
mod m20261122_000002_create_signing_keys;
mod m20261122_000003_create_users;
mod m20261122_000004_create_token_state;
mod m20261201_000005_refresh_access_tokens;
mod m20261201_000006_create_changes;
mod m20261206_000007_secretless_clients;
mod m20261206_000008_refresh_chains;
mod m20261206_000009_key_integrity;
mod m20261206_000010_token_exchange;
mod m20261207_000011_apis;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_clients::Migration),
            Box::new(m20261122_000002_create_signing_keys::Migration),
            Box::new(m20261122_000003_create_users::Migration),
            Box::new(m20261122_000004_create_token_state::Migration),
            Box::new(m20261201_000005_refresh_access_tokens::Migration),
            Box::new(m20261201_000006_create_changes::Migration),
            Box::new(m20261206_000007_secretless_clients::Migration),
            Box::new(m20261206_000008_refresh_chains::Migration),
            Box::new(m20261206_000009_key_integrity::Migration),
            Box::new(m20261206_000010_token_exchange::Migration),
            Box::new(m20261207_000011_apis::Migration),
        ]
    }
}
