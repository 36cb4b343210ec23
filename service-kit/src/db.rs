//! Database connections, the same for every service: the backend chosen by the URL (`sqlite:`
//! or `postgres://`), a SQLite file (and its folder) created on first start, WAL on every
//! SQLite connection, and migrations run at connect, with the race of two instances starting
//! together on an empty database handled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "no database at {}: start the server once to create it, or point database_url at the \
         right file (relative paths start at the working directory, {})",
        .path.display(),
        .cwd.display()
    )]
    Missing { path: PathBuf, cwd: PathBuf },
    #[error("cannot create the database folder {}: {source}", .path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Create a missing SQLite file (the server) or refuse (tools that only read or change
    /// what exists, so that running one from the wrong folder does not make a new database).
    pub create_if_missing: bool,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            create_if_missing: true,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Whether the URL names a SQLite database.
pub fn is_sqlite(database_url: &str) -> bool {
    database_url.starts_with("sqlite:")
}

/// Whether the URL names a PostgreSQL database.
pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// The file of a `sqlite:` URL, if it names one (not `:memory:`).
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Connects and runs `M`'s pending migrations.
pub async fn connect<M: MigratorTrait>(
    database_url: &str,
    options: &DbOptions,
) -> Result<DatabaseConnection, ConnectError> {
    let db = open(database_url, options).await?;
    migrate::<M>(&db).await?;
    Ok(db)
}

/// Connects without migrating.
pub async fn open(
    database_url: &str,
    options: &DbOptions,
) -> Result<DatabaseConnection, ConnectError> {
    if let Some(file) = sqlite_path(database_url) {
        prepare_sqlite_file(&file, options.create_if_missing)?;
    }
    let mut connect = ConnectOptions::new(database_url.to_owned());
    connect
        .max_connections(options.max_connections)
        .min_connections(1)
        .connect_timeout(options.connect_timeout)
        .acquire_timeout(options.acquire_timeout)
        .sqlx_logging(false);
    // On every pooled connection: WAL lets readers run beside a writer (a tool beside a running
    // server) and, with synchronous = NORMAL, makes a commit one write instead of an fsync per
    // transaction (durable against crashes of the process, not of the machine's power: the last
    // commits may be lost, never corrupted); the busy timeout makes a second writer wait
    // instead of failing.
    connect.map_sqlx_sqlite_opts(|opts| {
        opts.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
    });
    // Switching a new SQLite file to WAL needs it to itself for a moment: instances opening
    // the same new file together may be told "database is locked" at once (no busy wait).
    let mut attempt = 0;
    loop {
        match Database::connect(connect.clone()).await {
            Ok(db) => return Ok(db),
            Err(err) if attempt < 10 && is_sqlite(database_url) && is_busy(&err) => {
                attempt += 1;
                tracing::debug!(error = %err, attempt, "the SQLite file is busy; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// SQLite's "database is locked" (`SQLITE_BUSY`).
fn is_busy(err: &DbErr) -> bool {
    err.to_string().contains("database is locked")
}

fn prepare_sqlite_file(file: &Path, create: bool) -> Result<(), ConnectError> {
    if !create {
        if file.is_file() {
            return Ok(());
        }
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        return Err(ConnectError::Missing {
            path: absolute,
            cwd: std::env::current_dir().unwrap_or_default(),
        });
    }
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| ConnectError::Folder {
            path: folder.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Runs pending migrations. Instances starting together on an empty database race to record
/// the same migration; the loser retries and finds the work done.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbErr> {
    let mut attempt = 0;
    loop {
        match M::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(error = %err, attempt, "migration raced another instance; retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://data/auth.sqlite?mode=rwc").unwrap(),
            PathBuf::from("data/auth.sqlite")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db").unwrap(),
            PathBuf::from("/tmp/a.db")
        );
        assert!(sqlite_path("sqlite::memory:").is_none());
        assert!(sqlite_path("postgres://x").is_none());
    }

    #[test]
    fn a_missing_file_is_refused_when_it_may_not_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/db.sqlite");
        let err = prepare_sqlite_file(&file, false).unwrap_err();
        assert!(err.to_string().contains("sub/db.sqlite"), "{err}");
        assert!(!file.parent().unwrap().exists(), "nothing was created");
        prepare_sqlite_file(&file, true).unwrap();
        assert!(file.parent().unwrap().is_dir());
    }
}
