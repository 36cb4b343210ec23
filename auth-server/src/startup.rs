//! Building the server from settings: database, keys, the configuration's clients and users,
//! the use cases, the HTTP application and its background tasks.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use service_kit::db::{ConnectError, DbOptions};
use service_kit::serve::{BindError, Listening};
use tokio::sync::Notify;

use crate::admin::{Admin, AdminError, Managed};
use crate::api::{self, AppState, Discovery, Readiness, ReadyReport};
use crate::availability::Availability;
use crate::client_cache::{ClientCache, ClientSync};
use crate::clock::now_secs;
use crate::config::{ConfigError, Settings};
use crate::crypto::{KeyEncryptionKey, SecretVerifier};
use crate::grants::{
    AssertionVerifier, DpopGate, KeySource, TokenDependencies, TokenPolicy, TokenService,
    TrustedIssuer,
};
use crate::keys::{KeyPolicy, KeyRing, KeyRingError};
use crate::shared::{SharedError, SharedState};
use crate::storage::{Database, spawn_change_listener};
use crate::stores::{ClientStore, ReplayStore, StoreError, TokenStore};
use crate::throttle::{Throttle, ThrottleStore};
use token_verifier::keys::PublicKeySet;
use token_verifier::remote::{RemoteKeys, RemoteKeysConfig};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    #[error("configuration: {0}")]
    Bootstrap(#[from] AdminError),
    #[error("{0}")]
    KeyEncryptionKey(String),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("throttle.redis_url: {0}")]
    Shared(#[from] SharedError),
}

/// The state instances share (`throttle.store = "redis"`), or `None` (each instance alone).
/// Connects lazily: the server starts whether Redis is up or not.
pub fn shared_state(settings: &Settings) -> Result<Option<Arc<SharedState>>, StartupError> {
    match settings.throttle.store {
        ThrottleStore::Memory => Ok(None),
        ThrottleStore::Redis => Ok(Some(SharedState::connect(&settings.throttle)?)),
    }
}

/// The throttle: counts in `shared` when there is one, in this instance's memory otherwise.
pub fn throttle(settings: &Settings, shared: Option<&Arc<SharedState>>) -> Arc<Throttle> {
    Arc::new(match shared {
        Some(shared) => Throttle::with_shared(settings.throttle.clone(), shared.clone()),
        None => Throttle::new(settings.throttle.clone()),
    })
}

/// Opens the database: the server creates a missing SQLite file and waits up to 5 s for a
/// connection at start; the command line refuses to create one (run from the wrong folder, it
/// would make an empty database with new keys) and gives up after `db_timeout_ms`. Every round
/// trip after that is bounded by `db_timeout_ms`.
pub async fn open_database(
    settings: &Settings,
    server: bool,
    availability: Arc<Availability>,
) -> Result<Database, ConnectError> {
    let timeout = Duration::from_millis(u64::from(settings.db_timeout_ms));
    let options = DbOptions {
        create_if_missing: server,
        connect_timeout: if server {
            Duration::from_secs(5)
        } else {
            timeout
        },
        acquire_timeout: if server {
            Duration::from_secs(5)
        } else {
            timeout
        },
        max_connections: if service_kit::db::is_sqlite(&settings.database_url) {
            8
        } else {
            16
        },
    };
    Database::connect(&settings.database_url, &options, availability, timeout).await
}

/// How long what an instance holds may serve once the database is unreachable.
pub fn availability(settings: &Settings) -> Arc<Availability> {
    Arc::new(Availability::new(Duration::from_secs(u64::from(
        settings.max_stale_secs,
    ))))
}

/// The key lifecycle's timings, from the settings.
///
/// An instance signs with the active key of its last successful read of the key table for at
/// most `stale_after` (`max_stale_secs` plus five refresh periods, at least a minute): through
/// a database outage, that is how long client credentials keep being issued. A retired key
/// stays published for `token_ttl + stale_after + jwks_max_age + 60 s`, so that any token
/// signed with it from memory expires before it is unpublished: if an instance last read the
/// table at L and signs at t ≤ L + stale_after, the key was retired at some R ≥ L and is
/// removed at R + grace ≥ t + token_ttl + jwks_max_age + 60 s.
pub fn key_policy(settings: &Settings) -> KeyPolicy {
    let stale_after =
        u64::from(settings.max_stale_secs) + u64::from(settings.key_refresh_secs * 5).max(60);
    KeyPolicy {
        alg: settings.signing_alg,
        publish_ahead_secs: i64::from(settings.publish_ahead_secs()),
        rotation_secs: i64::from(settings.key_rotation_days) * 86_400,
        retired_grace_secs: i64::from(settings.token_ttl_secs)
            + i64::try_from(stale_after).unwrap_or(i64::MAX)
            + i64::from(settings.jwks_max_age_secs)
            + 60,
        stale_after: Duration::from_secs(stale_after),
    }
}

/// Opens the key ring (creating the first key on an empty database).
pub async fn key_ring(settings: &Settings, db: &Database) -> Result<Arc<KeyRing>, StartupError> {
    let kek = key_encryption_key(settings)?;
    Ok(Arc::new(
        KeyRing::open(Arc::new(db.keys()), kek, key_policy(settings)).await?,
    ))
}

/// The `[[trusted_issuers]]`, their keys ready to fetch (or read from their file).
fn trusted_issuers(settings: &Settings) -> Result<Vec<TrustedIssuer>, StartupError> {
    let invalid = |i: usize, key: &str, reason: String| {
        StartupError::Config(ConfigError::invalid(
            format!("trusted_issuers[{i}].{key}"),
            reason,
        ))
    };
    settings
        .trusted_issuers
        .iter()
        .enumerate()
        .map(|(i, trusted)| {
            let keys = match (&trusted.jwks_file, &trusted.jwks_uri) {
                (Some(path), _) => {
                    let document = std::fs::read(path).map_err(|err| {
                        invalid(
                            i,
                            "jwks_file",
                            format!("cannot read {}: {err}", path.display()),
                        )
                    })?;
                    let set = PublicKeySet::parse(&document)
                        .map_err(|err| invalid(i, "jwks_file", err.to_string()))?;
                    KeySource::Static(Arc::new(set))
                }
                (None, Some(uri)) => KeySource::Remote(
                    RemoteKeys::from_jwks_url(uri, RemoteKeysConfig::default())
                        .map_err(|err| invalid(i, "jwks_uri", err.to_string()))?,
                ),
                (None, None) => KeySource::Remote(
                    RemoteKeys::from_issuer(&trusted.issuer, RemoteKeysConfig::default())
                        .map_err(|err| invalid(i, "issuer", err.to_string()))?,
                ),
            };
            Ok(TrustedIssuer {
                issuer: trusted.issuer.clone(),
                audience: trusted
                    .audience
                    .clone()
                    .unwrap_or_else(|| settings.issuer_str()),
                keys,
            })
        })
        .collect()
}

/// The secret DPoP nonces are made with: derived from the key-encryption key, so that every
/// instance accepts every instance's nonces.
fn dpop_nonce_secret(kek: &KeyEncryptionKey) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(kek.as_bytes()).expect("any key length");
    mac.update(b"auth-server dpop nonce v1");
    mac.finalize().into_bytes().into()
}

/// The administrative operations over `db`, refusing to change what `settings` manage.
pub fn admin(settings: &Settings, db: &Database) -> Admin {
    Admin::new(
        Arc::new(db.apis()),
        Arc::new(db.clients()),
        Arc::new(db.users()),
        Arc::new(db.tokens()),
        Managed::of(&settings.apis, &settings.clients, &settings.users),
    )
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
    if !service_kit::db::is_sqlite(&settings.database_url) {
        return Err(StartupError::KeyEncryptionKey(
            "configuration: key_encryption_key (or key_encryption_key_file) is required with \
             PostgreSQL: base64 of 32 random bytes, e.g. `openssl rand -base64 32`"
                .into(),
        ));
    }
    let Some(db_file) = service_kit::db::sqlite_path(&settings.database_url) else {
        // An in-memory database: keys die with the process, so may their encryption key.
        return Ok(KeyEncryptionKey::generate());
    };
    let path = db_file.with_extension("kek");
    let fail = |what: &str, e: std::io::Error| {
        StartupError::KeyEncryptionKey(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read(&path) {
        Ok(bytes) => KeyEncryptionKey::from_file_contents(&bytes).ok_or_else(|| {
            StartupError::KeyEncryptionKey(format!(
                "{} must hold base64 of 32 bytes",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kek = KeyEncryptionKey::generate();
            // Base64 text, the form key_encryption_key_file takes, so the file can be passed
            // back as configuration.
            let text = base64::engine::general_purpose::STANDARD.encode(kek.as_bytes()) + "\n";
            write_private_file(&path, text.as_bytes()).map_err(|e| fail("cannot write", e))?;
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

/// The scopes discovery publishes, re-read in the background rather than per request.
struct Published {
    keys: Arc<KeyRing>,
    clients: Arc<dyn ClientStore>,
    scopes: RwLock<Arc<Vec<String>>>,
}

impl Published {
    async fn refresh_scopes(&self) {
        match self.clients.scopes_in_use().await {
            Ok(scopes) => {
                *self.scopes.write().expect("scopes lock") = Arc::new(scopes);
            }
            Err(err) => tracing::warn!(error = %err, "cannot read the scopes in use"),
        }
    }
}

impl Discovery for Published {
    fn jwks(&self) -> Arc<String> {
        self.keys.jwks()
    }

    fn scopes_supported(&self) -> Arc<Vec<String>> {
        self.scopes.read().expect("scopes lock").clone()
    }
}

/// Ready while the instance can issue tokens: the database answers, or it has been gone for
/// less than `max_stale_secs` (degraded: client credentials from memory), and a fresh signing
/// key is loaded. The sync loop probes the database; readiness asks nothing of it.
struct Health {
    availability: Arc<Availability>,
    keys: Arc<KeyRing>,
}

#[async_trait]
impl Readiness for Health {
    async fn check(&self) -> ReadyReport {
        let down = self.availability.is_down();
        ReadyReport {
            database: !down,
            stale_secs: down.then(|| self.availability.stale_for().as_secs()),
            can_issue_from_memory: self.availability.memory_usable(),
            signing_key: self.keys.active_kid().is_some(),
        }
    }
}

pub struct Application {
    listening: Listening,
    app: poem::endpoint::BoxEndpoint<'static>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    issuer: String,
}

impl Application {
    /// Connects, migrates, loads (or creates) the keys, applies the configuration's clients and
    /// users, and binds the listener (port 0 picks a free one); serve with `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Before anything records a metric.
        service_kit::telemetry::metrics_handle();
        let availability = availability(&settings);
        let db = open_database(&settings, true, availability.clone()).await?;
        let shared = shared_state(&settings)?;
        let keys = key_ring(&settings, &db).await?;
        let secrets = Arc::new(
            SecretVerifier::new(settings.verified_secret_cache)
                .map_err(|e| StartupError::KeyEncryptionKey(e.to_string()))?,
        );
        let admin = admin(&settings, &db);
        admin.apply_apis(&settings.apis).await?;
        admin.apply_clients(&settings.clients, &secrets).await?;
        admin.apply_users(&settings.users, &secrets).await?;

        let cache = Arc::new(ClientCache::new(
            Arc::new(db.clients()),
            u64::from(settings.client_cache_capacity),
            availability.clone(),
        ));
        let sync = ClientSync::start(cache.clone(), Arc::new(db.changes())).await?;
        let wake = Arc::new(Notify::new());
        let clients: Arc<dyn ClientStore> = cache.clone();
        let token_state: Arc<dyn TokenStore> = Arc::new(db.tokens());
        // Single-use jtis: in the database, or in Redis when the throttle shares it (every
        // instance sees both).
        let replays: Arc<dyn ReplayStore> = match &shared {
            Some(shared) => shared.replay_store(),
            None => Arc::new(db.replays()),
        };
        let tokens = Arc::new(TokenService::new(
            TokenDependencies {
                clients: clients.clone(),
                users: Arc::new(db.users()),
                tokens: token_state.clone(),
                signer: keys.clone(),
                secrets,
                throttle: throttle(&settings, shared.as_ref()),
                assertions: Arc::new(AssertionVerifier::new(
                    &settings.issuer_str(),
                    settings.assertion_max_age_secs,
                    replays.clone(),
                    trusted_issuers(&settings)?,
                    RemoteKeysConfig::default(),
                )),
                dpop: Arc::new(DpopGate::new(
                    &settings.issuer_str(),
                    settings.assertion_max_age_secs,
                    settings.dpop_require_nonce,
                    dpop_nonce_secret(&key_encryption_key(&settings)?),
                    replays,
                )),
            },
            TokenPolicy {
                issuer: settings.issuer_str(),
                access_ttl_secs: settings.token_ttl_secs,
                refresh_ttl_secs: settings.refresh_token_ttl_secs,
                refresh_chain_max_secs: settings.refresh_chain_max_secs,
            },
        ));
        let published = Arc::new(Published {
            keys: keys.clone(),
            clients,
            scopes: RwLock::default(),
        });
        published.refresh_scopes().await;

        let listening = Listening::bind(settings.bind).await?;
        let mut tasks = vec![
            sync.spawn(
                Duration::from_millis(u64::from(settings.client_sync_interval_ms)),
                wake.clone(),
            ),
            keys.spawn_maintenance(Duration::from_secs(u64::from(settings.key_refresh_secs))),
            spawn_every(Duration::from_secs(600), move || {
                let tokens = token_state.clone();
                async move {
                    match tokens.purge_expired(now_secs()).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "purged expired token state"),
                        Err(err) => {
                            tracing::warn!(error = %err, "purging expired token state failed")
                        }
                    }
                }
            }),
            spawn_every(Duration::from_secs(30), {
                let published = published.clone();
                move || {
                    let published = published.clone();
                    async move { published.refresh_scopes().await }
                }
            }),
        ];
        tasks.extend(spawn_change_listener(&db, wake));
        let state = AppState {
            tokens,
            discovery: published,
            readiness: Arc::new(Health { availability, keys }),
            issuer: settings.issuer_str(),
            jwks_max_age_secs: settings.jwks_max_age_secs,
            max_body_bytes: settings.max_body_bytes,
            trusted_proxies: Arc::new(settings.proxies()?),
            cors_allowed_origins: settings.cors_allowed_origins.clone(),
        };
        let app = poem::EndpointExt::boxed(api::app(&state));
        Ok(Self {
            listening,
            app,
            tasks,
            issuer: settings.issuer_str(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listening.port()
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(service_kit::serve::shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains for up to 10 s.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        // Poll the shutdown future once before saying we listen, so that a signal handler it
        // installs on its first poll is in place: a SIGTERM sent as soon as the line appears is
        // then a clean stop, not the default (fatal) action.
        let mut shutdown = std::pin::pin!(shutdown);
        let stopped = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(shutdown.as_mut().poll(cx).is_ready())
        })
        .await;
        let result = if stopped {
            Ok(())
        } else {
            tracing::info!(port = self.listening.port(), issuer = %self.issuer, "auth-server listening");
            self.listening.serve(self.app, shutdown).await
        };
        for task in self.tasks {
            task.abort();
        }
        result
    }
}

/// Runs `work` every `period` (the first time after one period) until aborted.
fn spawn_every<F, Fut>(period: Duration, work: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            work().await;
        }
    })
}
