//! Settings: defaults → a TOML file (`--config FILE` or `API_CONFIG`) → `.env` → `API_*`
//! environment variables (see `service_kit::config`). Unknown keys in the file and bad values
//! stop the start with a message that names the key.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
pub use service_kit::config::ConfigError;
use service_kit::config::{ServiceSettings, resolve_file_key};
use token_verifier::VerifierConfig;

/// Everything the players API can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The auth-server's public base URL: trusted `iss`, metadata and token endpoint.
    pub issuer: String,
    /// This API's public base URL, as its clients call it (behind a gateway, the gateway's URL
    /// with the API's prefix): the `servers` entry of its OpenAPI document, and the URL a
    /// DPoP proof's `htu` must name (this plus the request's path).
    pub public_url: String,
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
    /// The longest wait between two JWKS refetches caused by unknown key ids (while they find
    /// nothing new, as in a flood of made-up ones); 0 turns the limit off.
    pub jwks_cooldown_secs: u64,
    /// The shortest time between two such refetches (the first after a quiet spell is at once).
    pub jwks_min_interval_ms: u64,
    /// Fetch the issuer's metadata and keys over plain `http` from a host other than loopback
    /// (inside a network you trust and lock down; see `deploy/k8s/networkpolicy.yaml`).
    pub allow_insecure_jwks_url: bool,
    /// Time limit of one request to the issuer.
    pub jwks_timeout_secs: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Accept only DPoP-bound tokens (RFC 9449): a bearer token is refused even if valid.
    pub require_dpop: bool,
    /// How old a DPoP proof may be (and how long it is remembered to refuse a replay).
    pub dpop_max_age_secs: u64,
    /// The OTLP/HTTP collector to export spans to (`http://collector:4318`; spans go to
    /// `/v1/traces` under it). Unset (the default): no spans are made at all.
    pub otlp_endpoint: Option<String>,
    /// The scouting API players are referred to (`POST /players/squadnumber/{n}/scouting`), on
    /// the caller's behalf through a token exchange (RFC 8693). Unset: referrals answer 501.
    pub scouting: Option<ScoutingSettings>,
}

/// Where the scouting API is, and who this API is at the issuer.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoutingSettings {
    /// Its base URL, as this API reaches it: players are created at `{url}/players`.
    pub url: String,
    /// Its API at the issuer (id or resource URI): the exchanged token's audience.
    pub audience: String,
    /// This API's own client at the issuer, granted the exchange into `audience`
    /// (`auth-server clients grant players-api --exchange-to scouting-api`).
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// A file holding the client secret; wins over `client_secret`.
    pub client_secret_file: Option<PathBuf>,
    /// The issuer's token endpoint as this API reaches it; default `{issuer}/auth/token`.
    pub token_url: Option<String>,
    /// The scouting API's public base URL, as callers reach it (behind a gateway): a referred
    /// player's `Location` is under it. Default: `url`.
    pub public_url: Option<String>,
    /// Send the caller's token and this API's secret over plain `http` to a host other than
    /// loopback (inside a network you lock down, as `deploy/k8s/networkpolicy.yaml` does).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Time limit of the exchange, and of the call to the scouting API.
    #[serde(default = "default_scouting_timeout")]
    pub timeout_secs: u64,
}

fn default_scouting_timeout() -> u64 {
    5
}

/// Never prints the secret.
impl std::fmt::Debug for ScoutingSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoutingSettings")
            .field("url", &self.url)
            .field("audience", &self.audience)
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .field("public_url", &self.public_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("timeout_secs", &self.timeout_secs)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9001)),
            issuer: "http://localhost:9000".into(),
            public_url: "http://localhost:9001".into(),
            audience: "players-api".into(),
            jwks_url: None,
            database_url: "sqlite://data/resource-api.sqlite?mode=rwc".into(),
            database_url_file: None,
            leeway_secs: 60,
            jwks_cooldown_secs: 5,
            jwks_min_interval_ms: 1000,
            allow_insecure_jwks_url: false,
            jwks_timeout_secs: 5,
            max_body_bytes: 64 * 1024,
            require_dpop: false,
            dpop_max_age_secs: 300,
            otlp_endpoint: None,
            scouting: None,
        }
    }
}

impl ServiceSettings for Settings {
    const ENV_PREFIX: &'static str = "API_";

    fn finish(&mut self) -> Result<(), ConfigError> {
        let (url, file) = (&mut self.database_url, &mut self.database_url_file);
        resolve_file_key("database_url_file", url, file)?;
        if let Some(scouting) = &mut self.scouting {
            resolve_file_key(
                "scouting.client_secret_file",
                &mut scouting.client_secret,
                &mut scouting.client_secret_file,
            )?;
        }
        self.validate()
    }
}

impl Settings {
    /// Checks what serde cannot: URLs, the realm-safe audience, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::invalid(key, reason);
        for (key, value) in [
            ("issuer", Some(&self.issuer)),
            ("public_url", Some(&self.public_url)),
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
        if !(service_kit::db::is_sqlite(&self.database_url)
            || service_kit::db::is_postgres(&self.database_url))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be positive"));
        }
        service_kit::telemetry::check_otlp_endpoint(
            "otlp_endpoint",
            self.otlp_endpoint.as_deref(),
        )?;
        if self.jwks_timeout_secs == 0 {
            return Err(invalid("jwks_timeout_secs", "must be positive"));
        }
        if self.dpop_max_age_secs == 0 {
            return Err(invalid("dpop_max_age_secs", "must be positive"));
        }
        if let Some(scouting) = &self.scouting {
            for (key, value) in [
                ("scouting.url", Some(&scouting.url)),
                ("scouting.token_url", scouting.token_url.as_ref()),
                ("scouting.public_url", scouting.public_url.as_ref()),
            ] {
                let Some(value) = value else { continue };
                let Ok(url) = url::Url::parse(value) else {
                    return Err(invalid(key, "must be an http or https URL"));
                };
                let plain_ok = token_verifier::is_loopback(&url)
                    || scouting.allow_insecure_http
                    || key == "scouting.public_url";
                match url.scheme() {
                    "https" => {}
                    "http" if plain_ok => {}
                    "http" => {
                        return Err(invalid(
                            key,
                            "must be https (plain http only to loopback, or with \
                             scouting.allow_insecure_http: it carries tokens and a secret)",
                        ));
                    }
                    _ => return Err(invalid(key, "must be an http or https URL")),
                }
            }
            if scouting.audience.trim().is_empty() || scouting.client_id.trim().is_empty() {
                return Err(invalid(
                    "scouting",
                    "audience and client_id must be non-empty",
                ));
            }
            if scouting.client_secret.is_empty() {
                return Err(invalid(
                    "scouting.client_secret",
                    "give client_secret or client_secret_file",
                ));
            }
            if scouting.timeout_secs == 0 {
                return Err(invalid("scouting.timeout_secs", "must be positive"));
            }
        }
        Ok(())
    }

    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.trim_end_matches('/').to_owned()
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
        config.unknown_kid_min_interval = Duration::from_millis(self.jwks_min_interval_ms);
        config.allow_insecure_jwks_url = self.allow_insecure_jwks_url;
        config.fetch_timeout = Duration::from_secs(self.jwks_timeout_secs);
        config.public_url = Some(self.public_url());
        config.require_dpop = self.require_dpop;
        config.dpop_max_age = Duration::from_secs(self.dpop_max_age_secs);
        config.scopes_supported = crate::api::scopes();
        config
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's `Jail` closures must return `figment::Error`
mod tests {
    use figment::Jail;
    use std::path::Path;

    use service_kit::config::load_settings;

    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        Jail::expect_with(|_| {
            let settings = load_settings::<Settings>(None).unwrap().settings;
            assert_eq!(settings.bind.to_string(), "127.0.0.1:9001");
            assert_eq!(settings.issuer, "http://localhost:9000");
            assert_eq!(settings.audience, "players-api");
            assert_eq!(settings.leeway_secs, 60);
            assert_eq!(settings.jwks_cooldown_secs, 5);
            assert!(!settings.allow_insecure_jwks_url);
            assert!(settings.database_url.starts_with("sqlite://data/"));
            Ok(())
        });
    }

    #[test]
    fn an_issuer_or_audience_that_cannot_work_is_named() {
        Jail::expect_with(|jail| {
            jail.set_env("API_ISSUER", "not a url");
            let err = load_settings::<Settings>(None).unwrap_err();
            assert!(err.to_string().starts_with("issuer:"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("API_AUDIENCE", "a\"b");
            let err = load_settings::<Settings>(None).unwrap_err();
            assert!(err.to_string().starts_with("audience:"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_database_url_can_come_from_a_file() {
        Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://app@db/players\n")?;
            jail.create_file("api.toml", "database_url_file = \"db-url\"\n")?;
            let settings = load_settings::<Settings>(Some(Path::new("api.toml")))
                .unwrap()
                .settings;
            assert_eq!(settings.database_url, "postgres://app@db/players");
            Ok(())
        });
    }

    #[test]
    fn the_development_configuration_of_make_run_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/dev/resource-api.toml");
        let loaded = load_settings::<Settings>(Some(&path)).unwrap();
        assert_eq!(loaded.settings.audience, "players-api");
        let scouting = loaded
            .settings
            .scouting
            .expect("referrals go to the scouting API");
        assert_eq!(scouting.audience, "scouting-api");
        assert!(!format!("{scouting:?}").contains(&scouting.client_secret));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/dev/scouting-api.toml");
        let loaded = load_settings::<Settings>(Some(&path)).unwrap();
        assert_eq!(loaded.settings.audience, "scouting-api");
    }

    #[test]
    fn scouting_needs_a_secret_and_urls_and_reads_the_secret_from_a_file() {
        Jail::expect_with(|jail| {
            jail.set_env("API_SCOUTING__URL", "http://localhost:9002");
            jail.set_env("API_SCOUTING__AUDIENCE", "scouting-api");
            jail.set_env("API_SCOUTING__CLIENT_ID", "players-api");
            let err = load_settings::<Settings>(None).unwrap_err();
            assert!(
                err.to_string().starts_with("scouting.client_secret"),
                "{err}"
            );
            jail.create_file("secret", "from-a-file\n")?;
            jail.set_env("API_SCOUTING__CLIENT_SECRET_FILE", "secret");
            let settings = load_settings::<Settings>(None).unwrap().settings;
            assert_eq!(settings.scouting.unwrap().client_secret, "from-a-file");
            jail.set_env("API_SCOUTING__URL", "not a url");
            let err = load_settings::<Settings>(None).unwrap_err();
            assert!(err.to_string().starts_with("scouting.url"), "{err}");
            // Tokens and the secret travel there: plain http only to loopback, unless told.
            jail.set_env("API_SCOUTING__URL", "http://scouting-api:9001");
            let err = load_settings::<Settings>(None).unwrap_err();
            assert!(err.to_string().contains("allow_insecure_http"), "{err}");
            jail.set_env("API_SCOUTING__ALLOW_INSECURE_HTTP", "true");
            assert!(load_settings::<Settings>(None).is_ok());
            Ok(())
        });
    }
}
