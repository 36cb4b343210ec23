//! Building the application from settings: database, keys, bootstrap clients, HTTP server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use sea_orm::DatabaseConnection;

use crate::api::{self, AppState};
use crate::config::{ClientSecretSource, ConfigError, Settings};
use crate::crypto::{self, KeyEncryptionKey, SecretVerifier};
use crate::domain::{Audience, ClientId, GrantType, NewClient, ScopeSet, User, Username};
use crate::grants::TokenService;
use crate::keys::{KeyPolicy, KeyRing, KeyRingError, now_secs};
use crate::storage::{
    self, ClientRepository, KeyRepository, StorageError, TokenRepository, UserRepository,
};
use crate::throttle::Throttle;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    #[error("{0}")]
    KeyEncryptionKey(String),
    #[error("configuration: {key}: {reason}")]
    Client { key: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Whether building the services applies the configuration's `[[clients]]` and `[[users]]`.
/// Only the server does: the configuration is authoritative for those entries at every start,
/// and the CLI refuses to change them (a change would be undone by the next start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    Apply,
    Skip,
}

/// Everything the server runs on, shared by the HTTP layer and the CLI.
pub struct Services {
    pub db: DatabaseConnection,
    pub clients: ClientRepository,
    pub users: UserRepository,
    pub token_state: TokenRepository,
    pub keys: Arc<KeyRing>,
    pub tokens: Arc<TokenService>,
    pub secrets: Arc<SecretVerifier>,
}

impl Services {
    /// Connects, migrates and loads (or creates) the keys; with `Bootstrap::Apply` (the server
    /// at start-up) also applies the configuration's clients and users.
    pub async fn build(settings: &Settings, bootstrap: Bootstrap) -> Result<Self, StartupError> {
        let db = storage::connect(&settings.database_url).await?;
        let kek = key_encryption_key(settings)?;
        let policy = KeyPolicy {
            alg: settings.signing_alg,
            publish_ahead_secs: i64::from(settings.publish_ahead_secs()),
            rotation_secs: i64::from(settings.key_rotation_days) * 86_400,
            // Until every token the key signed has expired everywhere: its lifetime, plus how
            // long other instances may still sign with it (until their next refresh), plus
            // resource servers' clock leeway and JWKS caching.
            retired_grace_secs: i64::from(settings.token_ttl_secs)
                + i64::from(settings.key_refresh_secs)
                + i64::from(settings.jwks_max_age_secs)
                + 60,
            stale_after: Duration::from_secs(u64::from(settings.key_refresh_secs * 5).max(60)),
        };
        let keys = Arc::new(KeyRing::open(KeyRepository::new(db.clone()), kek, policy).await?);
        let clients = ClientRepository::new(db.clone());
        let secrets = Arc::new(
            SecretVerifier::new(settings.verified_secret_cache)
                .map_err(|e| StartupError::KeyEncryptionKey(e.to_string()))?,
        );
        let users = UserRepository::new(db.clone());
        if bootstrap == Bootstrap::Apply {
            bootstrap_clients(settings, &clients, &secrets).await?;
            bootstrap_users(settings, &users, &secrets).await?;
        }
        let token_state = TokenRepository::new(db.clone());
        let tokens = Arc::new(TokenService {
            clients: clients.clone(),
            users: users.clone(),
            tokens: token_state.clone(),
            secrets: secrets.clone(),
            keys: keys.clone(),
            signer: keys.clone(),
            throttle: Arc::new(Throttle::new(settings.throttle.clone())),
            issuer: settings.issuer_str(),
            ttl_secs: settings.token_ttl_secs,
            refresh_ttl_secs: settings.refresh_token_ttl_secs,
            refresh_chain_max_secs: settings.refresh_chain_max_secs,
        });
        Ok(Self {
            db,
            clients,
            users,
            token_state,
            keys,
            tokens,
            secrets,
        })
    }

    pub fn app_state(&self, settings: &Settings) -> AppState {
        AppState {
            db: self.db.clone(),
            clients: self.clients.clone(),
            keys: self.keys.clone(),
            tokens: self.tokens.clone(),
            issuer: settings.issuer_str(),
            jwks_max_age_secs: settings.jwks_max_age_secs,
            max_body_bytes: settings.max_body_bytes,
            trust_forwarded_for: settings.trust_forwarded_for,
        }
    }
}

/// The configured key-encryption key; for SQLite without one, a generated key kept in a file
/// beside the database (development); for PostgreSQL, one must be configured.
fn key_encryption_key(settings: &Settings) -> Result<KeyEncryptionKey, StartupError> {
    if let Some(bytes) = settings.configured_key_encryption_key()? {
        return KeyEncryptionKey::from_bytes(&bytes)
            .ok_or_else(|| StartupError::KeyEncryptionKey("key_encryption_key: 32 bytes".into()));
    }
    if !settings.issuer_is_localhost() {
        return Err(StartupError::KeyEncryptionKey(
            "configuration: key_encryption_key (or key_encryption_key_file) is required when \
             the issuer is not a localhost URL: a generated key kept beside the database would \
             travel with every copy of it"
                .into(),
        ));
    }
    if !settings.database_url.starts_with("sqlite:") {
        return Err(StartupError::KeyEncryptionKey(
            "configuration: key_encryption_key (or key_encryption_key_file) is required with \
             PostgreSQL: base64 of 32 random bytes, e.g. `openssl rand -base64 32`"
                .into(),
        ));
    }
    let Some(db_file) = storage::sqlite_path(&settings.database_url) else {
        // An in-memory database: keys die with the process, so may their encryption key.
        return Ok(KeyEncryptionKey::generate());
    };
    let path = db_file.with_extension("kek");
    let fail = |what: &str, e: std::io::Error| {
        StartupError::KeyEncryptionKey(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read(&path) {
        Ok(bytes) => KeyEncryptionKey::from_bytes(&bytes).ok_or_else(|| {
            StartupError::KeyEncryptionKey(format!("{} must hold 32 bytes", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kek = KeyEncryptionKey::generate();
            write_private_file(&path, kek.as_bytes()).map_err(|e| fail("cannot write", e))?;
            tracing::info!(path = %path.display(), "generated a development key-encryption key");
            Ok(kek)
        }
        Err(e) => Err(fail("cannot read", e)),
    }
}

fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

async fn bootstrap_clients(
    settings: &Settings,
    clients: &ClientRepository,
    secrets: &SecretVerifier,
) -> Result<(), StartupError> {
    for (i, entry) in settings.clients.iter().enumerate() {
        let invalid = |field: &str, reason: String| StartupError::Client {
            key: format!("clients[{i}].{field}"),
            reason,
        };
        let id =
            ClientId::parse(&entry.client_id).map_err(|e| invalid("client_id", e.to_string()))?;
        let scopes = ScopeSet::parse(&entry.scopes.join(" "))
            .map_err(|e| invalid("scopes", e.to_string()))?;
        let audiences = entry
            .audiences
            .iter()
            .map(|a| Audience::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("audiences", e.to_string()))?;
        if audiences.is_empty() {
            return Err(invalid(
                "audiences",
                "at least one audience is required".into(),
            ));
        }
        let grant_types = entry
            .grant_types
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                invalid(
                    "grant_types",
                    "client_credentials, password or refresh_token".into(),
                )
            })?;
        let secret_hash = match entry.secret(i)? {
            ClientSecretSource::Hash(hash) if crypto::is_argon2id_hash(&hash) => hash,
            ClientSecretSource::Hash(_) => {
                return Err(invalid(
                    "client_secret_hash",
                    "must be an argon2id PHC string".into(),
                ));
            }
            ClientSecretSource::Inline(secret) | ClientSecretSource::File(secret) => {
                // Keep the stored hash when it already matches, so restarts do not rehash.
                let existing = clients.find(&id).await?;
                let matches = match &existing {
                    Some(c) => secrets
                        .verify(Some(&c.secret_hash), &secret)
                        .await
                        .unwrap_or(false),
                    None => false,
                };
                match existing {
                    Some(c) if matches => c.secret_hash,
                    _ => crypto::hash_secret(&secret)
                        .map_err(|e| invalid("client_secret", e.to_string()))?,
                }
            }
        };
        let client = NewClient {
            id,
            secret_hash,
            scopes,
            audiences,
            grant_types,
        };
        clients.upsert(&client, now_secs()).await?;
        tracing::info!(client_id = %client.id, "bootstrap client ready");
    }
    Ok(())
}

async fn bootstrap_users(
    settings: &Settings,
    users: &UserRepository,
    secrets: &SecretVerifier,
) -> Result<(), StartupError> {
    for (i, entry) in settings.users.iter().enumerate() {
        let invalid = |field: &str, reason: String| StartupError::Client {
            key: format!("users[{i}].{field}"),
            reason,
        };
        let username =
            Username::parse(&entry.username).map_err(|e| invalid("username", e.to_string()))?;
        let scopes = ScopeSet::parse(&entry.scopes.join(" "))
            .map_err(|e| invalid("scopes", e.to_string()))?;
        let password_hash = match entry.password(i)? {
            ClientSecretSource::Hash(hash) if crypto::is_argon2id_hash(&hash) => hash,
            ClientSecretSource::Hash(_) => {
                return Err(invalid(
                    "password_hash",
                    "must be an argon2id PHC string".into(),
                ));
            }
            ClientSecretSource::Inline(password) | ClientSecretSource::File(password) => {
                let existing = users.find(&username).await?;
                let matches = match &existing {
                    Some(u) => secrets
                        .verify(Some(&u.password_hash), &password)
                        .await
                        .unwrap_or(false),
                    None => false,
                };
                match existing {
                    Some(u) if matches => u.password_hash,
                    _ => crypto::hash_secret(&password)
                        .map_err(|e| invalid("password", e.to_string()))?,
                }
            }
        };
        let user = User {
            username,
            password_hash,
            scopes,
            active: entry.active,
        };
        users.upsert(&user, now_secs()).await?;
        tracing::info!(username = %user.username, active = user.active, "bootstrap user ready");
    }
    Ok(())
}

pub struct Application {
    port: u16,
    acceptor: poem::listener::TcpAcceptor,
    app: poem::endpoint::BoxEndpoint<'static>,
    maintenance: tokio::task::JoinHandle<()>,
    purge: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and prepares everything; serve with
    /// `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let services = Services::build(&settings, Bootstrap::Apply).await?;
        let acceptor = TcpListener::bind(settings.bind)
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.bind,
                source,
            })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(SocketAddr::port))
            .unwrap_or(settings.bind.port());
        let maintenance = services
            .keys
            .spawn_maintenance(Duration::from_secs(u64::from(settings.key_refresh_secs)));
        let purge = spawn_purge(services.token_state.clone());
        let app = poem::EndpointExt::boxed(api::app(&services.app_state(&settings)));
        tracing::info!(port, issuer = %settings.issuer_str(), "auth-server listening");
        Ok(Self {
            port,
            acceptor,
            app,
            maintenance,
            purge,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains for up to 10 s.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        // A connection silent for 30 s (a half-sent request, an idle keep-alive) is closed.
        let result = poem::Server::new_with_acceptor(self.acceptor)
            .idle_timeout(Duration::from_secs(30))
            .run_with_graceful_shutdown(self.app, shutdown, Some(Duration::from_secs(10)))
            .await;
        self.maintenance.abort();
        self.purge.abort();
        result
    }
}

/// Deletes expired refresh tokens and stale access-token revocations every ten minutes.
fn spawn_purge(tokens: TokenRepository) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(600));
        loop {
            ticker.tick().await;
            match tokens.purge_expired(now_secs()).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "purged expired token state"),
                Err(err) => tracing::warn!(error = %err, "purging expired token state failed"),
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
