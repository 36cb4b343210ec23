//! Persistence with sea-orm: the same code on SQLite (default) and PostgreSQL, chosen by URL.
//! The repositories implement the traits of `crate::stores`; nothing above this module sees a
//! sea-orm type.

mod apis;
mod changes;
mod clients;
pub mod entities;
mod keys;
pub mod migrations;
mod replay;
mod tokens;
mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, SqlErr};
use service_kit::db::{ConnectError, DbOptions};

pub use apis::ApiRepository;
pub use changes::{ChangeLog, spawn_change_listener};
pub use clients::ClientRepository;
pub use keys::KeyRepository;
pub use replay::ReplayRepository;
pub use tokens::TokenRepository;
pub use users::UserRepository;

use crate::availability::Availability;
use crate::stores::StoreError;

/// An open database: the repositories are built from it. Every query goes through [`Db`].
#[derive(Clone)]
pub struct Database {
    db: Db,
}

/// The connection, with a time limit on every round trip and the breaker of [`Availability`]:
/// while the database is known to be down, queries fail at once.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    availability: Arc<Availability>,
    timeout: Duration,
}

impl Db {
    /// Runs one round trip (a query or a whole transaction) through the breaker.
    pub(crate) async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, StoreError> {
        if self.availability.is_down() {
            return Err(StoreError::Unavailable(
                "the database is unreachable; waiting for it to answer again".into(),
            ));
        }
        self.probe(work).await
    }

    /// Runs one round trip even while the breaker is open: the health probe.
    pub(crate) async fn probe<T>(
        &self,
        work: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(value)) => {
                self.availability.record_ok();
                Ok(value)
            }
            Ok(Err(err)) => {
                let err = store_error(err);
                if let StoreError::Unavailable(cause) = &err {
                    self.availability.record_unreachable(cause);
                }
                Err(err)
            }
            Err(_elapsed) => {
                let cause = format!("no answer within {} ms", self.timeout.as_millis());
                self.availability.record_unreachable(&cause);
                Err(StoreError::Unavailable(cause))
            }
        }
    }

    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    fn is_postgres(&self) -> bool {
        matches!(
            self.conn.get_database_backend(),
            sea_orm::DbBackend::Postgres
        )
    }
}

impl Database {
    /// Connects and migrates (creating a missing SQLite file only if `options` say so). Every
    /// later round trip may take `timeout` before the database counts as unreachable.
    pub async fn connect(
        url: &str,
        options: &DbOptions,
        availability: Arc<Availability>,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let conn = service_kit::db::connect::<migrations::Migrator>(url, options).await?;
        Ok(Self {
            db: Db {
                conn,
                availability,
                timeout,
            },
        })
    }

    pub fn apis(&self) -> ApiRepository {
        ApiRepository::new(self.db.clone())
    }

    pub fn clients(&self) -> ClientRepository {
        ClientRepository::new(self.db.clone())
    }

    pub fn users(&self) -> UserRepository {
        UserRepository::new(self.db.clone())
    }

    pub fn tokens(&self) -> TokenRepository {
        TokenRepository::new(self.db.clone())
    }

    /// Single-use identifiers (assertion and DPoP proof `jti`s).
    pub fn replays(&self) -> ReplayRepository {
        ReplayRepository::new(self.db.clone())
    }

    pub fn keys(&self) -> KeyRepository {
        KeyRepository::new(self.db.clone())
    }

    pub fn changes(&self) -> ChangeLog {
        ChangeLog::new(self.db.clone())
    }

    /// The connection pool, for the PostgreSQL change listener.
    pub fn connection(&self) -> &DatabaseConnection {
        self.db.conn()
    }
}

/// Classifies a database error for the layers above: unreachable (worth a 503 and a retry),
/// a unique-key conflict, or anything else.
pub(crate) fn store_error(err: DbErr) -> StoreError {
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return StoreError::Conflict;
    }
    let unreachable = match &err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => {
            is_unreachable(runtime)
        }
        _ => false,
    };
    if unreachable {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Failed(err.to_string())
    }
}

fn is_unreachable(err: &RuntimeErr) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        RuntimeErr::SqlxError(sqlx) => matches!(
            sqlx.as_ref(),
            Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::Tls(_)
        ),
        _ => false,
    }
}
