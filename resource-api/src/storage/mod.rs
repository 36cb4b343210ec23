//! Where players are kept: sea-orm over SQLite (default) or PostgreSQL, chosen by the URL.

mod entities;
mod migrations;
mod players;
mod seed_players;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

pub use players::PlayerRepository;

/// A storage failure the API can act on, or an unexpected one.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("squad number {0} is taken")]
    SquadNumberTaken(u8),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Opens the database, creating a SQLite file (and its folder) if needed, and migrates it:
/// on first start that creates the table and seeds the squad.
pub async fn connect(database_url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(folder) = sqlite_folder(database_url) {
        std::fs::create_dir_all(&folder)
            .map_err(|err| DbErr::Custom(format!("cannot create {}: {err}", folder.display())))?;
    }
    let mut options = ConnectOptions::new(database_url);
    options
        .max_connections(10)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // SQLite, on every pooled connection: WAL lets reads run beside a write, and with
        // synchronous = NORMAL a commit is one write instead of an fsync per transaction
        // (durable against process crashes; a power loss may drop the last commits, never
        // corrupt the file); the busy timeout makes a second writer wait instead of failing.
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
        });
    let db = Database::connect(options).await?;
    migrations::Migrator::up(&db, None).await?;
    Ok(db)
}

/// The folder of a SQLite database file, if the URL names one.
fn sqlite_folder(database_url: &str) -> Option<std::path::PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let parent = std::path::Path::new(path).parent()?;
    (!parent.as_os_str().is_empty()).then(|| parent.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_of_a_sqlite_file_is_found_in_its_url() {
        assert_eq!(
            sqlite_folder("sqlite://data/players.sqlite?mode=rwc"),
            Some("data".into())
        );
        assert_eq!(sqlite_folder("sqlite:///tmp/x/p.db"), Some("/tmp/x".into()));
        assert_eq!(sqlite_folder("sqlite::memory:"), None);
        assert_eq!(sqlite_folder("sqlite://p.db"), None);
        assert_eq!(sqlite_folder("postgres://u@h/db"), None);
    }
}
