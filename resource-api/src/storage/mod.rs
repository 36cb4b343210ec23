//! Where players are kept: sea-orm over SQLite (default) or PostgreSQL, chosen by the URL.

mod entities;
mod migrations;
mod players;
mod seed_players;

use sea_orm::{DatabaseConnection, DbErr};
use service_kit::db::{ConnectError, DbOptions};

pub use players::PlayerRepository;

/// A storage failure the API can act on, or an unexpected one.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("squad number {0} is taken")]
    SquadNumberTaken(u8),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// What the database said (logged, never sent).
    #[error("database: {0}")]
    Database(String),
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        Self::Database(err.to_string())
    }
}

/// Opens the database, creating a SQLite file (and its folder) if needed, and migrates it:
/// on first start that creates the table and seeds the squad.
pub async fn connect(
    database_url: &str,
    options: &DbOptions,
) -> Result<DatabaseConnection, ConnectError> {
    service_kit::db::connect::<migrations::Migrator>(database_url, options).await
}
