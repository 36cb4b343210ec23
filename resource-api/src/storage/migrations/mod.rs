//! Forward-only schema migrations, the same on SQLite and PostgreSQL, run at start.

use sea_orm_migration::prelude::*;

mod m20260101_000001_create_players;
mod m20260101_000002_seed_players;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_players::Migration),
            Box::new(m20260101_000002_seed_players::Migration),
        ]
    }
}
