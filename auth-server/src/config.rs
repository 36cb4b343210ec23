//! Settings: defaults → TOML file (`--config` / `AUTH_CONFIG`) → `AUTH_*` environment variables.
//! Secrets may also come from files (`*_file` keys, e.g. `AUTH_KEY_ENCRYPTION_KEY_FILE`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::crypto::SigningAlgorithm;
use crate::throttle::ThrottleSettings;

/// The secret of the documented development client. It is public, so a server whose issuer is
/// not on localhost refuses to start with it (or with any secret written in plain text).
pub const DEV_CLIENT_SECRET: &str = "dev-secret-change-me";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
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
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of a refresh token; each refresh issues a new one with a new lifetime...
    pub refresh_token_ttl_secs: u32,
    /// ...but a chain of refreshes from one login ends this long after the login.
    pub refresh_chain_max_secs: u32,
    /// Take the client address for throttling from the last `X-Forwarded-For` entry (set it
    /// only behind a proxy that appends to that header, such as the nginx gateway).
    pub trust_forwarded_for: bool,
    pub throttle: ThrottleSettings,
    pub clients: Vec<BootstrapClient>,
    pub users: Vec<BootstrapUser>,
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
}

fn default_grant_types() -> Vec<String> {
    vec!["client_credentials".to_owned()]
}

/// A bootstrap client's secret once files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecretSource {
    /// Plain text written in the configuration itself: for development only.
    Inline(String),
    /// Plain text read from a file (a mounted secret).
    File(String),
    Hash(String),
}

impl Default for Settings {
    fn default() -> Self {
        Self {
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
            max_body_bytes: 16 * 1024,
            refresh_token_ttl_secs: 14 * 86_400,
            refresh_chain_max_secs: 90 * 86_400,
            trust_forwarded_for: false,
            throttle: ThrottleSettings::default(),
            clients: Vec::new(),
            users: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(Box<figment::Error>),
    #[error("configuration: {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("configuration: cannot read {key} from {path}: {source}")]
    File {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        Self::Figment(Box::new(err))
    }
}

/// The top-level keys, as `AUTH_<KEY>` environment variables may name them.
const KEYS: &[&str] = &[
    "bind",
    "issuer",
    "database_url",
    "database_url_file",
    "token_ttl_secs",
    "signing_alg",
    "key_encryption_key",
    "key_encryption_key_file",
    "jwks_max_age_secs",
    "key_publish_ahead_secs",
    "key_rotation_days",
    "key_refresh_secs",
    "verified_secret_cache",
    "max_body_bytes",
    "refresh_token_ttl_secs",
    "refresh_chain_max_secs",
    "trust_forwarded_for",
    "throttle",
    "clients",
    "users",
];

fn is_known(env_key: &str) -> bool {
    let top = env_key
        .split("__")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    KEYS.contains(&top.as_str())
}

/// `AUTH_*` variables naming a known key. Others are ignored with a warning rather than
/// refused, because platforms set variables of their own under the same prefix (Kubernetes
/// injects `AUTH_SERVER_PORT=tcp://…` for a Service named `auth-server`). A TOML file stays
/// strict: an unknown key there is a typo.
fn environment() -> Env {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if let Some(key) = name.strip_prefix("AUTH_")
            && key != "CONFIG"
            && !is_known(key)
        {
            tracing::warn!(
                variable = name,
                "ignoring an environment variable that names no setting"
            );
        }
    }
    Env::prefixed("AUTH_")
        .filter(|key| is_known(key.as_str()))
        .split("__")
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Loads the three layers. `config_file` comes from `--config`; else `AUTH_CONFIG` is read.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        let env_file = std::env::var_os("AUTH_CONFIG").map(PathBuf::from);
        if let Some(file) = config_file.map(Path::to_path_buf).or(env_file) {
            if !file.is_file() {
                return Err(invalid(
                    "config",
                    format!("{} is not a file", file.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(environment());
        let mut settings: Settings = figment.extract()?;
        if let Some(path) = settings.database_url_file.take() {
            settings.database_url = std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::File {
                    key: "database_url_file".into(),
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned();
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
        for (i, user) in self.users.iter().enumerate() {
            if matches!(user.password(i)?, ClientSecretSource::Inline(_))
                && !self.issuer_is_localhost()
            {
                return Err(invalid(
                    format!("users[{i}].password"),
                    "a plain-text password is refused when the issuer is not a localhost URL; \
                     give password_hash or password_file",
                ));
            }
        }
        for (i, client) in self.clients.iter().enumerate() {
            let secret = client.secret(i)?;
            let plain = matches!(secret, ClientSecretSource::Inline(_))
                || matches!(&secret, ClientSecretSource::File(s) if s == DEV_CLIENT_SECRET);
            if plain && !self.issuer_is_localhost() {
                return Err(invalid(
                    format!("clients[{i}].client_secret"),
                    "a plain-text (development) secret is refused when the issuer is not a \
                     localhost URL; give client_secret_hash or client_secret_file",
                ));
            }
        }
        Ok(())
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
        let encoded = either_or_file(
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
    /// Resolves inline values and files into one secret source; exactly one must be given.
    pub fn secret(&self, index: usize) -> Result<ClientSecretSource, ConfigError> {
        let key = |name: &str| format!("clients[{index}].{name}");
        let plain = either_or_file(
            &key("client_secret"),
            self.client_secret.as_deref(),
            self.client_secret_file.as_deref(),
        )?;
        let hash = either_or_file(
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
            (Some(s), None) if self.client_secret.is_some() => Ok(ClientSecretSource::Inline(s)),
            (Some(s), None) => Ok(ClientSecretSource::File(s)),
            (None, Some(h)) => Ok(ClientSecretSource::Hash(h)),
        }
    }
}

impl BootstrapUser {
    /// Resolves inline values and files into one secret source; exactly one must be given.
    pub fn password(&self, index: usize) -> Result<ClientSecretSource, ConfigError> {
        let key = |name: &str| format!("users[{index}].{name}");
        let plain = either_or_file(
            &key("password"),
            self.password.as_deref(),
            self.password_file.as_deref(),
        )?;
        let hash = either_or_file(
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
            (Some(s), None) if self.password.is_some() => Ok(ClientSecretSource::Inline(s)),
            (Some(s), None) => Ok(ClientSecretSource::File(s)),
            (None, Some(h)) => Ok(ClientSecretSource::Hash(h)),
        }
    }
}

fn either_or_file(
    key: &str,
    inline: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, format!("give {key} or {key}_file, not both"))),
        (Some(value), None) => Ok(Some(value.to_owned())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|source| ConfigError::File {
                key: format!("{key}_file"),
                path: path.to_owned(),
                source,
            }),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's `Jail` closures must return `figment::Error`
mod tests {
    use super::*;

    fn load_toml(toml: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(toml))
            .extract()?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn every_setting_can_be_named_by_an_environment_variable() {
        // serde lists the expected fields when it meets an unknown one.
        let err = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string("__probe__ = 1"))
            .extract::<Settings>()
            .unwrap_err();
        let figment::error::Kind::UnknownField(_, expected) = err.kind else {
            panic!("{err}");
        };
        assert_eq!(expected, KEYS);
    }

    #[test]
    fn environment_variables_set_keys_and_unknown_ones_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("AUTH_TOKEN_TTL_SECS", "120");
            jail.set_env("AUTH_THROTTLE__MAX_FAILURES", "9");
            jail.set_env("AUTH_SERVER_PORT", "tcp://10.0.0.1:9000");
            jail.set_env("AUTH_SERVER_SERVICE_HOST", "10.0.0.1");
            let settings = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(settings.token_ttl_secs, 120);
            assert_eq!(settings.throttle.max_failures, 9);
            Ok(())
        });
    }

    #[test]
    fn the_database_url_may_come_from_a_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://u:p@db/auth\n")?;
            jail.set_env("AUTH_DATABASE_URL_FILE", "db-url");
            let settings = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(settings.database_url, "postgres://u:p@db/auth");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused_and_named() {
        let err = load_toml("tokn_ttl_secs = 5").unwrap_err().to_string();
        assert!(err.contains("tokn_ttl_secs"), "{err}");
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
        assert!(load_toml(client).is_ok());
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
        assert!(load_toml(user).is_ok());
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
}
