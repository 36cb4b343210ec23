//! Persistence with sea-orm: the same code on SQLite (default) and PostgreSQL, chosen by URL.

mod clients;
pub mod entities;
mod keys;
pub mod migrations;
mod tokens;
mod users;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

pub use clients::ClientRepository;
pub use keys::{KeyRecord, KeyRepository, KeyState};
pub use tokens::{Exchange, RefreshTokenRecord, TokenRepository};
pub use users::UserRepository;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("already exists")]
    Conflict,
    #[error("stored row is invalid: {0}")]
    Corrupt(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
}

/// Connects, creating the SQLite file (and its directory) when needed, and runs migrations.
pub async fn connect(database_url: &str) -> Result<DatabaseConnection, StorageError> {
    let is_sqlite = database_url.starts_with("sqlite:");
    if is_sqlite
        && let Some(dir) = sqlite_path(database_url).and_then(|p| p.parent().map(ToOwned::to_owned))
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(&dir).map_err(|source| StorageError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut options = ConnectOptions::new(database_url.to_owned());
    options
        .max_connections(if is_sqlite { 8 } else { 16 })
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    // On every pooled connection: WAL lets readers run beside a writer (the CLI beside a
    // running server) and, with synchronous = NORMAL, makes a commit one write instead of an
    // fsync per transaction (durable against crashes of the process, not of the machine's
    // power: the last commits may be lost, never corrupted); the busy timeout makes a second
    // writer wait instead of failing.
    options.map_sqlx_sqlite_opts(|opts| {
        opts.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
    });
    let db = Database::connect(options).await?;
    migrate(&db).await?;
    Ok(db)
}

/// Runs pending migrations. Instances starting together on an empty database race to record
/// the same migration; the loser retries and finds the work done.
async fn migrate(db: &DatabaseConnection) -> Result<(), StorageError> {
    let mut attempt = 0;
    loop {
        match migrations::Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(error = %err, attempt, "migration raced another instance; retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// The file of a `sqlite:` URL, if it names one (not `:memory:`).
pub fn sqlite_path(database_url: &str) -> Option<std::path::PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// A cheap round trip for readiness.
pub async fn ping(db: &DatabaseConnection) -> Result<(), StorageError> {
    db.ping().await.map_err(StorageError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://data/auth.sqlite?mode=rwc").unwrap(),
            std::path::PathBuf::from("data/auth.sqlite")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db").unwrap(),
            std::path::PathBuf::from("/tmp/a.db")
        );
        assert!(sqlite_path("sqlite::memory:").is_none());
        assert!(sqlite_path("postgres://x").is_none());
    }
}
