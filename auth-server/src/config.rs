//! Settings: defaults → TOML file (`--config` / `AUTH_CONFIG`) → `.env` → `AUTH_*` environment
//! variables (see `service_kit::config`). Secrets may also come from files (`*_file` keys, or
//! any `AUTH_<KEY>_FILE` variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
pub use service_kit::config::ConfigError;
use service_kit::config::{ServiceSettings, inline_or_file, resolve_file_key};
use url::Url;

use crate::crypto::SigningAlgorithm;
use crate::net::{Cidr, TrustedProxies};
use crate::throttle::{ThrottleSettings, ThrottleStore};

/// The secret of the documented development client. It is public, so a server outside
/// development mode refuses to start with it (or with any secret written in plain text).
pub const DEV_CLIENT_SECRET: &str = "dev-secret-change-me";

/// Every secret and password published with the project (`deploy/dev`, the README, the tests):
/// refused outside development mode however it is given (in plain text, from a file, or as a
/// hash of it).
pub const PUBLISHED_DEV_SECRETS: &[&str] = &[
    DEV_CLIENT_SECRET,
    "reader-secret",
    "squad-app-secret",
    "players-api-secret",
    "campeones-2022",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Development mode (`make run`): secrets written in plain text and the published
    /// development secrets are allowed; the issuer must then be a localhost URL.
    pub dev: bool,
    /// Socket address to listen on.
    pub bind: SocketAddr,
    /// Public base URL: `iss` of every token and the base of every metadata URL.
    pub issuer: Url,
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub database_url: String,
    /// A file holding the database URL (a mounted secret); wins over `database_url`.
    pub database_url_file: Option<PathBuf>,
    pub token_ttl_secs: u32,
    pub signing_alg: SigningAlgorithm,
    /// Base64 of 32 random bytes that encrypts private keys at rest. Without it, a SQLite
    /// database gets a generated key file beside it; PostgreSQL requires it.
    pub key_encryption_key: Option<String>,
    pub key_encryption_key_file: Option<PathBuf>,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age_secs: u32,
    /// How long a new key is published before it signs (default: twice the JWKS max-age).
    pub key_publish_ahead_secs: Option<u32>,
    pub key_rotation_days: u32,
    /// How often each instance re-reads the key table (other instances may have rotated).
    pub key_refresh_secs: u32,
    /// Remember successful argon2id verifications in memory (see `crypto::secret`).
    pub verified_secret_cache: bool,
    /// How long client credentials keep being issued from memory while the database is
    /// unreachable (0: refuse as soon as it is).
    pub max_stale_secs: u32,
    /// How often each instance checks the database for changed clients: a client added,
    /// removed or given a new secret anywhere takes effect on every instance within this (plus
    /// one database round trip; at once on PostgreSQL, which notifies).
    pub client_sync_interval_ms: u32,
    /// How long a request waits for the database before the database counts as unreachable.
    pub db_timeout_ms: u32,
    /// Clients kept in memory (the ones in use; the least used are dropped first).
    pub client_cache_capacity: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of a refresh token; each refresh issues a new one with a new lifetime...
    pub refresh_token_ttl_secs: u32,
    /// ...but a chain of refreshes from one login ends this long after the login.
    pub refresh_chain_max_secs: u32,
    /// The proxies (CIDRs, or single addresses) whose `X-Forwarded-For` entries are believed:
    /// the client's address for throttling is the first address, walking the header from the
    /// right, that is not one of them (see `crate::net`). Empty (the default): the TCP peer.
    pub trusted_proxies: Vec<String>,
    /// Replaced by `trusted_proxies`, which says *which* peers may forward; `true` is refused.
    #[serde(default, skip_serializing)]
    pub trust_forwarded_for: Option<bool>,
    /// Browser origins allowed to call the token endpoint and discovery cross-origin (CORS),
    /// e.g. a Swagger UI on another port; empty (the default) allows none.
    pub cors_allowed_origins: Vec<String>,
    /// The OTLP/HTTP collector to export spans to (`http://collector:4318`; spans go to
    /// `/v1/traces` under it). Unset (the default): no spans are made at all.
    pub otlp_endpoint: Option<String>,
    pub throttle: ThrottleSettings,
    /// How old a client assertion or DPoP proof may be (by its `iat`; an assertion without `iat`
    /// may expire at most this far ahead), in seconds; their `jti`s are remembered no longer
    /// (plus leeway).
    pub assertion_max_age_secs: u32,
    /// Answer a DPoP proof without a fresh server nonce with `use_dpop_nonce` (RFC 9449 §8).
    pub dpop_require_nonce: bool,
    /// Issuers of workload identities whose tokens may authenticate federated clients.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// APIs (resource servers) registered at start-up, before `[[clients]]`.
    pub apis: Vec<BootstrapApi>,
    pub clients: Vec<BootstrapClient>,
    pub users: Vec<BootstrapUser>,
}

/// An API created or updated at start-up from configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapApi {
    /// Its identifier: the `aud` of its tokens (`players-api`).
    pub id: String,
    /// Its RFC 8707 resource URI (`https://players.example`): `resource` may name it by this.
    pub resource: Option<String>,
    /// The scopes it defines: its tokens carry only these.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Its tokens live at most this long, in seconds (1 to 86400).
    pub token_ttl_secs: Option<u32>,
    /// The grants its tokens may come from; unset: any the client may use.
    pub grant_types: Option<Vec<String>>,
}

/// A password-grant user created or updated at start-up from configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapUser {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// An argon2id PHC string.
    pub password_hash: Option<String>,
    pub password_hash_file: Option<PathBuf>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

/// A client created or updated at start-up from configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// An argon2id PHC string.
    pub client_secret_hash: Option<String>,
    pub client_secret_hash_file: Option<PathBuf>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// `private_key_jwt` with the client's public keys in this JWKS file (no secret).
    pub jwks_file: Option<PathBuf>,
    /// `private_key_jwt` with the client's public keys fetched from this URL (no secret).
    pub jwks_uri: Option<String>,
    /// Workload identity: the `[[trusted_issuers]]` issuer whose token about
    /// `federated_subject` authenticates this client (no secret).
    pub federated_issuer: Option<String>,
    pub federated_subject: Option<String>,
    /// Its access tokens must be DPoP-bound.
    #[serde(default)]
    pub dpop_bound: bool,
    /// The APIs (audiences) it may get tokens for on behalf of a subject token's `sub` (RFC 8693
    /// token exchange; needs the token-exchange grant type). The first is the default target.
    #[serde(default)]
    pub exchange_to: Vec<String>,
    /// Its access tokens live at most this long, in seconds (1 to 86400); the server's
    /// `token_ttl_secs` still bounds them. Unset: the server's.
    pub token_ttl_secs: Option<u32>,
    /// Claims added to every access token issued to it, e.g. `claims = { tenant = "acme" }`;
    /// never a registered claim (`iss`, `sub`, `aud`, `scope`, `act`, …).
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Default for BootstrapClient {
    /// No credentials yet, no scope or audience, the client credentials grant.
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            client_secret_hash: None,
            client_secret_hash_file: None,
            scopes: Vec::new(),
            audiences: Vec::new(),
            grant_types: default_grant_types(),
            jwks_file: None,
            jwks_uri: None,
            federated_issuer: None,
            federated_subject: None,
            dpop_bound: false,
            exchange_to: Vec::new(),
            token_ttl_secs: None,
            claims: Default::default(),
        }
    }
}

/// An external issuer of workload identities (a Kubernetes cluster's service-account issuer)
/// whose tokens may authenticate the clients bound to one of its subjects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// Its `iss`, exactly.
    pub issuer: String,
    /// Its keys; neither `jwks_uri` nor `jwks_file`: found by its OpenID discovery document.
    pub jwks_uri: Option<String>,
    /// Its keys, from a file (for clusters whose issuer cannot be reached).
    pub jwks_file: Option<PathBuf>,
    /// The audience its tokens must name (the projected token's audience); default our issuer.
    pub audience: Option<String>,
}

/// How a configured client authenticates, once files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredentialSource {
    Secret(SecretSource),
    Jwks(String),
    JwksUri(String),
    Federated { issuer: String, subject: String },
}

fn default_grant_types() -> Vec<String> {
    vec!["client_credentials".to_owned()]
}

/// A bootstrap client's secret once files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Plain text written in the configuration itself: for development only.
    Inline(String),
    /// Plain text read from a file (a mounted secret).
    File(String),
    Hash(String),
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dev: false,
            bind: SocketAddr::from(([127, 0, 0, 1], 9000)),
            issuer: Url::parse("http://localhost:9000").expect("static URL"),
            database_url: "sqlite://data/auth-server.sqlite?mode=rwc".to_owned(),
            database_url_file: None,
            token_ttl_secs: 3600,
            signing_alg: SigningAlgorithm::ES256,
            key_encryption_key: None,
            key_encryption_key_file: None,
            jwks_max_age_secs: 300,
            key_publish_ahead_secs: None,
            key_rotation_days: 30,
            key_refresh_secs: 10,
            verified_secret_cache: true,
            max_stale_secs: 300,
            client_sync_interval_ms: 500,
            db_timeout_ms: 1000,
            client_cache_capacity: 10_000,
            max_body_bytes: 16 * 1024,
            refresh_token_ttl_secs: 14 * 86_400,
            refresh_chain_max_secs: 90 * 86_400,
            trusted_proxies: Vec::new(),
            trust_forwarded_for: None,
            cors_allowed_origins: Vec::new(),
            otlp_endpoint: None,
            throttle: ThrottleSettings::default(),
            assertion_max_age_secs: 300,
            dpop_require_nonce: false,
            trusted_issuers: Vec::new(),
            apis: Vec::new(),
            clients: Vec::new(),
            users: Vec::new(),
        }
    }
}

fn invalid(key: impl AsRef<str>, reason: impl AsRef<str>) -> ConfigError {
    ConfigError::invalid(key, reason)
}

impl ServiceSettings for Settings {
    const ENV_PREFIX: &'static str = "AUTH_";

    fn finish(&mut self) -> Result<(), ConfigError> {
        let (url, file) = (&mut self.database_url, &mut self.database_url_file);
        resolve_file_key("database_url_file", url, file)?;
        let t = &mut self.throttle;
        if let Some(url) = inline_or_file(
            "throttle.redis_url",
            t.redis_url.as_deref(),
            t.redis_url_file.as_deref(),
        )? {
            t.redis_url = Some(url.trim().to_owned());
            t.redis_url_file = None;
        }
        self.validate()
    }
}

impl Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        service_kit::telemetry::check_otlp_endpoint(
            "otlp_endpoint",
            self.otlp_endpoint.as_deref(),
        )?;
        if !matches!(self.issuer.scheme(), "http" | "https") || self.issuer.host().is_none() {
            return Err(invalid("issuer", "must be an http(s) URL"));
        }
        if self.issuer.query().is_some() || self.issuer.fragment().is_some() {
            return Err(invalid(
                "issuer",
                "must not have a query or fragment (RFC 8414 §2)",
            ));
        }
        if !(60..=86_400).contains(&self.token_ttl_secs) {
            return Err(invalid("token_ttl_secs", "must be between 60 and 86400"));
        }
        if !(1..=86_400).contains(&self.jwks_max_age_secs) {
            return Err(invalid("jwks_max_age_secs", "must be between 1 and 86400"));
        }
        if self.key_rotation_days == 0 {
            return Err(invalid("key_rotation_days", "must be at least 1"));
        }
        if !(1..=3600).contains(&self.key_refresh_secs) {
            return Err(invalid("key_refresh_secs", "must be between 1 and 3600"));
        }
        if self.key_refresh_secs > self.jwks_max_age_secs {
            return Err(invalid(
                "key_refresh_secs",
                "must not exceed jwks_max_age_secs (instances must see a rotation before \
                 resource servers need the new key)",
            ));
        }
        if self.max_stale_secs > 86_400 {
            return Err(invalid("max_stale_secs", "must be at most 86400"));
        }
        if !(50..=60_000).contains(&self.client_sync_interval_ms) {
            return Err(invalid(
                "client_sync_interval_ms",
                "must be between 50 and 60000",
            ));
        }
        if !(50..=60_000).contains(&self.db_timeout_ms) {
            return Err(invalid("db_timeout_ms", "must be between 50 and 60000"));
        }
        if self.client_cache_capacity == 0 {
            return Err(invalid("client_cache_capacity", "must be at least 1"));
        }
        if !(1024..=1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                "must be between 1024 and 1048576",
            ));
        }
        if !self.database_url.starts_with("sqlite:")
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if !(60..=365 * 86_400).contains(&self.refresh_token_ttl_secs) {
            return Err(invalid(
                "refresh_token_ttl_secs",
                "must be between 60 and 31536000",
            ));
        }
        if self.refresh_chain_max_secs < self.refresh_token_ttl_secs {
            return Err(invalid(
                "refresh_chain_max_secs",
                "must be at least refresh_token_ttl_secs",
            ));
        }
        for (i, origin) in self.cors_allowed_origins.iter().enumerate() {
            let is_origin = Url::parse(origin).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
                    && !origin.ends_with('/')
            });
            if !is_origin {
                return Err(invalid(
                    format!("cors_allowed_origins[{i}]"),
                    "must be an origin: scheme://host[:port], without a path or trailing slash",
                ));
            }
        }
        let t = &self.throttle;
        if t.max_failures == 0 || t.max_failures_per_address == 0 || t.window_secs == 0 {
            return Err(invalid(
                "throttle",
                "max_failures, max_failures_per_address and window_secs must be positive",
            ));
        }
        if t.base_backoff_secs == 0 || t.max_backoff_secs < t.base_backoff_secs {
            return Err(invalid(
                "throttle",
                "need 0 < base_backoff_secs <= max_backoff_secs",
            ));
        }
        if self.issuer.scheme() != "https" && !self.issuer_is_localhost() {
            return Err(invalid(
                "issuer",
                "must be an https URL unless it is a localhost URL",
            ));
        }
        if self.dev && !self.issuer_is_localhost() {
            return Err(invalid(
                "dev",
                "development mode needs a localhost issuer; turn it off in production",
            ));
        }
        if t.max_failures_per_name == 0 {
            return Err(invalid(
                "throttle.max_failures_per_name",
                "must be positive",
            ));
        }
        if t.store == ThrottleStore::Redis {
            let url = t.redis_url.as_deref().unwrap_or_default();
            if !(url.starts_with("redis://") || url.starts_with("rediss://"))
                || redis::Client::open(url).is_err()
            {
                return Err(invalid(
                    "throttle.redis_url",
                    "store = \"redis\" needs redis_url (or redis_url_file, or \
                     AUTH_THROTTLE__REDIS_URL_FILE): redis://[user:password@]host:port[/db]",
                ));
            }
        }
        if !(10..=10_000).contains(&t.redis_timeout_ms) {
            return Err(invalid(
                "throttle.redis_timeout_ms",
                "must be between 10 and 10000",
            ));
        }
        if !(1..=3600).contains(&t.redis_retry_secs) {
            return Err(invalid(
                "throttle.redis_retry_secs",
                "must be between 1 and 3600",
            ));
        }
        if self.trust_forwarded_for == Some(true) {
            return Err(invalid(
                "trust_forwarded_for",
                "was replaced by trusted_proxies: list the CIDRs of your proxies (e.g. the \
                 gateway's pod network), and X-Forwarded-For is walked from the right past them",
            ));
        }
        self.proxies()?;
        for (i, user) in self.users.iter().enumerate() {
            self.check_secret(&user.password(i)?, &format!("users[{i}].password"))?;
        }
        if self.assertion_max_age_secs == 0 || self.assertion_max_age_secs > 3600 {
            return Err(invalid(
                "assertion_max_age_secs",
                "must be between 1 and 3600",
            ));
        }
        for (i, trusted) in self.trusted_issuers.iter().enumerate() {
            if url::Url::parse(&trusted.issuer).is_err() {
                return Err(invalid(
                    format!("trusted_issuers[{i}].issuer"),
                    "must be a URL",
                ));
            }
            if trusted.jwks_uri.is_some() && trusted.jwks_file.is_some() {
                return Err(invalid(
                    format!("trusted_issuers[{i}].jwks_uri"),
                    "give jwks_uri or jwks_file, not both",
                ));
            }
        }
        for (i, client) in self.clients.iter().enumerate() {
            if let ClientCredentialSource::Secret(secret) = client.credentials(i)? {
                self.check_secret(&secret, &format!("clients[{i}].client_secret"))?;
            }
        }
        Ok(())
    }

    /// Outside development mode: nothing in plain text in the configuration, and no published
    /// development secret in any form.
    fn check_secret(&self, source: &SecretSource, key: &str) -> Result<(), ConfigError> {
        if self.dev {
            return Ok(());
        }
        let published = match source {
            SecretSource::Inline(_) => {
                return Err(invalid(
                    key,
                    "a secret written in the configuration is for development mode only \
                     (dev = true, as make run sets); give it as a hash or from a file",
                ));
            }
            SecretSource::File(secret) => PUBLISHED_DEV_SECRETS.contains(&secret.as_str()),
            SecretSource::Hash(hash) => PUBLISHED_DEV_SECRETS
                .iter()
                .any(|dev| crate::crypto::hash_matches(dev, hash)),
        };
        if published {
            return Err(invalid(
                key,
                "is a published development secret, refused outside development mode",
            ));
        }
        Ok(())
    }

    /// `trusted_proxies`, parsed.
    pub fn proxies(&self) -> Result<TrustedProxies, ConfigError> {
        self.trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Cidr::parse(text).ok_or_else(|| {
                    invalid(
                        format!("trusted_proxies[{i}]"),
                        "must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies::new)
    }

    pub fn issuer_is_localhost(&self) -> bool {
        match self.issuer.host() {
            Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// The issuer as written in tokens and metadata: no trailing slash.
    pub fn issuer_str(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_owned()
    }

    pub fn publish_ahead_secs(&self) -> u32 {
        self.key_publish_ahead_secs
            .unwrap_or(2 * self.jwks_max_age_secs)
    }

    /// The key-encryption key, if configured (inline or from a file), as raw bytes.
    pub fn configured_key_encryption_key(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let encoded = inline_or_file(
            "key_encryption_key",
            self.key_encryption_key.as_deref(),
            self.key_encryption_key_file.as_deref(),
        )?;
        encoded
            .map(|text| {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim())
                    })
                    .map_err(|_| invalid("key_encryption_key", "must be base64"))?;
                if bytes.len() != 32 {
                    return Err(invalid(
                        "key_encryption_key",
                        "must decode to exactly 32 bytes",
                    ));
                }
                Ok(bytes)
            })
            .transpose()
    }
}

impl BootstrapClient {
    /// The one way this client authenticates: a secret (or its hash), `jwks_file`, `jwks_uri`,
    /// or `federated_issuer` with `federated_subject`.
    pub fn credentials(&self, index: usize) -> Result<ClientCredentialSource, ConfigError> {
        let key = |name: &str| format!("clients[{index}].{name}");
        let has_secret = self.client_secret.is_some()
            || self.client_secret_file.is_some()
            || self.client_secret_hash.is_some()
            || self.client_secret_hash_file.is_some();
        let federated = self.federated_issuer.is_some() || self.federated_subject.is_some();
        let methods = [
            has_secret,
            self.jwks_file.is_some(),
            self.jwks_uri.is_some(),
            federated,
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(invalid(
                key("client_secret"),
                "give one way to authenticate: a secret (or its hash), jwks_file, jwks_uri, or \
                 federated_issuer with federated_subject",
            ));
        }
        if let Some(path) = &self.jwks_file {
            let jwks = std::fs::read_to_string(path).map_err(|err| {
                invalid(
                    key("jwks_file"),
                    format!("cannot read {}: {err}", path.display()),
                )
            })?;
            return Ok(ClientCredentialSource::Jwks(jwks));
        }
        if let Some(uri) = &self.jwks_uri {
            return Ok(ClientCredentialSource::JwksUri(uri.clone()));
        }
        if federated {
            let (Some(issuer), Some(subject)) = (&self.federated_issuer, &self.federated_subject)
            else {
                return Err(invalid(
                    key("federated_subject"),
                    "federated_issuer and federated_subject go together",
                ));
            };
            return Ok(ClientCredentialSource::Federated {
                issuer: issuer.clone(),
                subject: subject.clone(),
            });
        }
        self.secret(index).map(ClientCredentialSource::Secret)
    }

    /// Resolves inline values and files into one secret source; exactly one must be given.
    pub fn secret(&self, index: usize) -> Result<SecretSource, ConfigError> {
        let key = |name: &str| format!("clients[{index}].{name}");
        let plain = inline_or_file(
            &key("client_secret"),
            self.client_secret.as_deref(),
            self.client_secret_file.as_deref(),
        )?;
        let hash = inline_or_file(
            &key("client_secret_hash"),
            self.client_secret_hash.as_deref(),
            self.client_secret_hash_file.as_deref(),
        )?;
        match (plain, hash) {
            (Some(_), Some(_)) => Err(invalid(
                key("client_secret"),
                "give either a secret or its hash, not both",
            )),
            (None, None) => Err(invalid(
                key("client_secret"),
                "a client needs client_secret, client_secret_hash or their *_file",
            )),
            (Some(s), None) if self.client_secret.is_some() => Ok(SecretSource::Inline(s)),
            (Some(s), None) => Ok(SecretSource::File(s)),
            (None, Some(h)) => Ok(SecretSource::Hash(h)),
        }
    }
}

impl BootstrapUser {
    /// Resolves inline values and files into one secret source; exactly one must be given.
    pub fn password(&self, index: usize) -> Result<SecretSource, ConfigError> {
        let key = |name: &str| format!("users[{index}].{name}");
        let plain = inline_or_file(
            &key("password"),
            self.password.as_deref(),
            self.password_file.as_deref(),
        )?;
        let hash = inline_or_file(
            &key("password_hash"),
            self.password_hash.as_deref(),
            self.password_hash_file.as_deref(),
        )?;
        match (plain, hash) {
            (Some(_), Some(_)) => Err(invalid(
                key("password"),
                "give either a password or its hash, not both",
            )),
            (None, None) => Err(invalid(
                key("password"),
                "a user needs password, password_hash or their *_file",
            )),
            (Some(s), None) if self.password.is_some() => Ok(SecretSource::Inline(s)),
            (Some(s), None) => Ok(SecretSource::File(s)),
            (None, Some(h)) => Ok(SecretSource::Hash(h)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's `Jail` closures must return `figment::Error`
mod tests {
    use std::path::Path;

    use service_kit::config::load_settings;

    use super::*;

    fn load_toml(toml: &str) -> Result<Settings, ConfigError> {
        let mut result = Err(ConfigError::Invalid(Vec::new()));
        figment::Jail::expect_with(|jail| {
            jail.create_file("auth.toml", toml)?;
            result = load_settings::<Settings>(Some(Path::new("auth.toml"))).map(|l| l.settings);
            Ok(())
        });
        result
    }

    #[test]
    fn environment_variables_set_keys_and_unknown_ones_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("AUTH_TOKEN_TTL_SECS", "120");
            jail.set_env("AUTH_THROTTLE__MAX_FAILURES", "9");
            jail.set_env("AUTH_SERVER_PORT", "tcp://10.0.0.1:9000");
            jail.set_env("AUTH_SERVER_SERVICE_HOST", "10.0.0.1");
            let loaded = load_settings::<Settings>(None).map_err(|e| e.to_string())?;
            assert_eq!(loaded.settings.token_ttl_secs, 120);
            assert_eq!(loaded.settings.throttle.max_failures, 9);
            assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused_named_and_the_meant_one_suggested() {
        let err = load_toml("tokn_ttl_secs = 5").unwrap_err().to_string();
        assert_eq!(
            err,
            "auth.toml: unknown key `tokn_ttl_secs`; did you mean `token_ttl_secs`?"
        );
    }

    #[test]
    fn a_bad_value_is_refused_and_named() {
        let err = load_toml("signing_alg = \"HS256\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("signing_alg"), "{err}");
        let err = load_toml("token_ttl_secs = 5").unwrap_err().to_string();
        assert!(err.contains("token_ttl_secs"), "{err}");
    }

    #[test]
    fn a_plain_secret_is_refused_when_the_issuer_is_not_localhost() {
        let client = r#"
            [[clients]]
            client_id = "foobarbaz"
            client_secret = "dev-secret-change-me"
        "#;
        assert!(load_toml(&format!("dev = true\n{client}")).is_ok());
        let err = load_toml(&format!("issuer = \"https://auth.example.com\"\n{client}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].client_secret"), "{err}");
    }

    #[test]
    fn throttle_settings_nest_and_unknown_nested_keys_are_named() {
        let settings = load_toml("[throttle]\nmax_failures = 3").unwrap();
        assert_eq!(settings.throttle.max_failures, 3);
        assert_eq!(
            settings.throttle.window_secs, 300,
            "other keys keep their defaults"
        );
        let err = load_toml("[throttle]\nmax_failure = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_failure"), "{err}");
    }

    #[test]
    fn a_plain_user_password_is_refused_when_the_issuer_is_not_localhost() {
        let user = "[[users]]\nusername = \"alice\"\npassword = \"pw\"\n";
        assert!(load_toml(&format!("dev = true\n{user}")).is_ok());
        let err = load_toml(&format!("issuer = \"https://auth.example.com\"\n{user}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("users[0].password"), "{err}");
    }

    #[test]
    fn secrets_can_come_from_files_without_their_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("auth-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kek");
        std::fs::write(&file, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
        let settings = load_toml(&format!("key_encryption_key_file = {:?}", file)).unwrap();
        let kek = settings.configured_key_encryption_key().unwrap().unwrap();
        assert_eq!(kek.len(), 32);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_localhost_issuer_alone_does_not_allow_a_development_secret() {
        let client =
            "[[clients]]\nclient_id = \"foobarbaz\"\nclient_secret = \"dev-secret-change-me\"\n";
        // The production-shaped compose file's issuer is a localhost URL.
        let err = load_toml(&format!("issuer = \"http://localhost:8080\"\n{client}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients[0].client_secret"), "{err}");
        assert!(load_toml(&format!("dev = true\n{client}")).is_ok());
    }

    #[test]
    fn a_published_development_secret_is_refused_from_a_file_or_as_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "squad-app-secret\n").unwrap();
        let from_file =
            format!("[[clients]]\nclient_id = \"squad-app\"\nclient_secret_file = {file:?}\n");
        let err = load_toml(&from_file).unwrap_err().to_string();
        assert!(err.contains("clients[0].client_secret"), "{err}");

        let hash = crate::crypto::hash_secret("campeones-2022").unwrap();
        let as_hash = format!("[[users]]\nusername = \"lionel\"\npassword_hash = \"{hash}\"\n");
        let err = load_toml(&as_hash).unwrap_err().to_string();
        assert!(err.contains("users[0].password"), "{err}");

        // Secrets of one's own pass, in a file or as a hash.
        std::fs::write(&file, "a-secret-of-our-own\n").unwrap();
        assert!(load_toml(&from_file).is_ok());
        let hash = crate::crypto::hash_secret("a-password-of-our-own").unwrap();
        assert!(
            load_toml(&format!(
                "[[users]]\nusername = \"lionel\"\npassword_hash = \"{hash}\"\n"
            ))
            .is_ok()
        );
    }

    #[test]
    fn a_plain_http_issuer_is_refused_off_localhost_and_dev_mode_only_on_localhost() {
        let err = load_toml("issuer = \"http://auth.example.com\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("issuer"), "{err}");
        assert!(load_toml("issuer = \"https://auth.example.com\"").is_ok());
        assert!(load_toml("issuer = \"http://127.0.0.1:8080\"").is_ok());
        let err = load_toml("dev = true\nissuer = \"https://auth.example.com\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev"), "{err}");
    }

    #[test]
    fn the_development_configuration_of_make_run_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/dev/auth-server.toml");
        let loaded = load_settings::<Settings>(Some(&path)).unwrap();
        assert_eq!(loaded.settings.clients.len(), 4);
        assert_eq!(loaded.settings.apis.len(), 2);
        assert!(!loaded.settings.cors_allowed_origins.is_empty());
    }

    #[test]
    fn trusted_proxies_are_cidrs_and_trust_forwarded_for_points_to_them() {
        let settings =
            load_toml("trusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.1\"]").unwrap();
        assert!(settings.proxies().is_ok());
        let err = load_toml("trusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/40\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trusted_proxies[1]"), "{err}");
        let err = load_toml("trust_forwarded_for = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trusted_proxies"), "{err}");
        assert!(load_toml("trust_forwarded_for = false").is_ok());
    }

    #[test]
    fn the_redis_store_needs_a_url_which_may_come_from_a_file() {
        let err = load_toml("[throttle]\nstore = \"redis\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("throttle.redis_url"), "{err}");
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            jail.create_file("redis-url", "redis://:pw@redis:6379/0\n")?;
            jail.create_file("auth.toml", "[throttle]\nstore = \"redis\"")?;
            jail.set_env("AUTH_THROTTLE__REDIS_URL_FILE", "redis-url");
            result = Some(load_settings::<Settings>(Some(Path::new("auth.toml"))));
            Ok(())
        });
        let settings = result.unwrap().unwrap().settings;
        assert_eq!(
            settings.throttle.redis_url.as_deref(),
            Some("redis://:pw@redis:6379/0")
        );
        assert_eq!(settings.throttle.store, ThrottleStore::Redis);
    }
}
