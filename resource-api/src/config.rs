//! Settings, in three layers: defaults, then a TOML file (`--config FILE` or `API_CONFIG`),
//! then `API_*` environment variables (`__` separates nested keys). Unknown keys and bad
//! values stop the start with a message that names the key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use token_verifier::VerifierConfig;

/// Everything the players API can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The auth-server's public base URL: trusted `iss`, metadata and token endpoint.
    pub issuer: String,
    /// The audience tokens must name; also the realm of `WWW-Authenticate`.
    pub audience: String,
    /// Where the issuer's keys are; discovered from its metadata when unset.
    pub jwks_url: Option<String>,
    /// `sqlite://…` (default, created on first start) or `postgres://…`.
    pub database_url: String,
    /// A file holding the database URL (for secrets); wins over `database_url`.
    pub database_url_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` / `nbf`.
    pub leeway_secs: u64,
    /// Minimum seconds between JWKS refetches caused by unknown key ids.
    pub jwks_cooldown_secs: u64,
    /// Time limit of one request to the issuer.
    pub jwks_timeout_secs: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9001)),
            issuer: "http://localhost:9000".into(),
            audience: "players-api".into(),
            jwks_url: None,
            database_url: "sqlite://data/resource-api.sqlite?mode=rwc".into(),
            database_url_file: None,
            leeway_secs: 60,
            jwks_cooldown_secs: 30,
            jwks_timeout_secs: 5,
            max_body_bytes: 64 * 1024,
            log_format: LogFormat::Text,
        }
    }
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The top-level keys, as `API_<KEY>` environment variables may name them.
const KEYS: &[&str] = &[
    "bind",
    "issuer",
    "audience",
    "jwks_url",
    "database_url",
    "database_url_file",
    "leeway_secs",
    "jwks_cooldown_secs",
    "jwks_timeout_secs",
    "max_body_bytes",
    "log_format",
];

fn is_known(env_key: &str) -> bool {
    let top = env_key
        .split("__")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    KEYS.contains(&top.as_str())
}

/// `API_*` variables naming a known key. Others are ignored with a warning rather than refused:
/// platforms set variables of their own under the same prefix (Kubernetes injects
/// `API_PORT=tcp://…` for a Service named `api`). A TOML file stays strict.
fn environment() -> Env {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if let Some(key) = name.strip_prefix("API_")
            && key != "CONFIG"
            && !is_known(key)
        {
            tracing::warn!(
                variable = name,
                "ignoring an environment variable that names no setting"
            );
        }
    }
    Env::prefixed("API_")
        .filter(|key| is_known(key.as_str()))
        .split("__")
}

impl Settings {
    /// Reads the layers; `file` is `--config` (else `API_CONFIG`, read by the CLI).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(environment());
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        if let Some(path) = settings.database_url_file.take() {
            settings.database_url = std::fs::read_to_string(&path)
                .map_err(|err| ConfigError::Invalid {
                    key: "database_url_file",
                    reason: format!("{}: {err}", path.display()),
                })?
                .trim()
                .to_owned();
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: URLs, the realm-safe audience, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        for (key, value) in [
            ("issuer", Some(&self.issuer)),
            ("jwks_url", self.jwks_url.as_ref()),
        ] {
            let Some(value) = value else { continue };
            match url::Url::parse(value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(_) => return Err(invalid(key, "must be an http or https URL")),
                Err(err) => return Err(invalid(key, &err.to_string())),
            }
        }
        if self.audience.trim().is_empty() || self.audience.contains(['"', '\\']) {
            return Err(invalid(
                "audience",
                "must be non-empty, without quotes or backslashes",
            ));
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be positive"));
        }
        if self.jwks_timeout_secs == 0 {
            return Err(invalid("jwks_timeout_secs", "must be positive"));
        }
        Ok(())
    }

    /// The issuer's token endpoint, for the spec's OAuth2 flow.
    pub fn token_url(&self) -> String {
        format!("{}/auth/token", self.issuer.trim_end_matches('/'))
    }

    pub fn verifier_config(&self) -> VerifierConfig {
        let mut config = VerifierConfig::new(&self.issuer, &self.audience);
        config.jwks_url = self.jwks_url.clone();
        config.leeway = Duration::from_secs(self.leeway_secs);
        config.unknown_kid_cooldown = Duration::from_secs(self.jwks_cooldown_secs);
        config.fetch_timeout = Duration::from_secs(self.jwks_timeout_secs);
        config
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's `Jail` closures must return `figment::Error`
mod tests {
    use figment::Jail;

    use super::*;

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
    fn platform_variables_under_the_prefix_are_ignored() {
        Jail::expect_with(|jail| {
            jail.set_env("API_AUDIENCE", "scouting-api");
            jail.set_env("API_PORT", "tcp://10.0.0.2:9001");
            let settings = Settings::load(None).unwrap();
            assert_eq!(settings.audience, "scouting-api");
            Ok(())
        });
    }

    #[test]
    fn defaults_match_the_contract() {
        Jail::expect_with(|_| {
            let settings = Settings::load(None).unwrap();
            assert_eq!(settings.bind.to_string(), "127.0.0.1:9001");
            assert_eq!(settings.issuer, "http://localhost:9000");
            assert_eq!(settings.audience, "players-api");
            assert_eq!(settings.leeway_secs, 60);
            assert_eq!(settings.jwks_cooldown_secs, 30);
            assert!(settings.database_url.starts_with("sqlite://data/"));
            Ok(())
        });
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("api.toml", "audience = \"from-file\"\nleeway_secs = 5\n")?;
            jail.set_env("API_LEEWAY_SECS", "7");
            jail.set_env("API_CONFIG", "ignored-by-settings.toml");
            let settings = Settings::load(Some(Path::new("api.toml"))).unwrap();
            assert_eq!(settings.audience, "from-file");
            assert_eq!(settings.leeway_secs, 7);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_stops_the_start_and_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("api.toml", "audiense = \"typo\"\n")?;
            let err = Settings::load(Some(Path::new("api.toml"))).unwrap_err();
            assert!(err.to_string().contains("audiense"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_is_named_by_its_key() {
        Jail::expect_with(|jail| {
            jail.set_env("API_LEEWAY_SECS", "soon");
            let err = Settings::load(None).unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("leeway_secs"),
                "{err}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("API_ISSUER", "not a url");
            let err = Settings::load(None).unwrap_err();
            assert!(err.to_string().contains("`issuer`"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error_not_a_silent_default() {
        Jail::expect_with(|_| {
            let err = Settings::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(matches!(err, ConfigError::MissingFile(_)));
            Ok(())
        });
    }

    #[test]
    fn the_database_url_can_come_from_a_file() {
        Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://app@db/players\n")?;
            jail.set_env("API_DATABASE_URL_FILE", "db-url");
            let settings = Settings::load(None).unwrap();
            assert_eq!(settings.database_url, "postgres://app@db/players");
            Ok(())
        });
    }
}
