//! What a verifier needs to know: whom to trust, for which audience, and how patient to be.

use std::time::Duration;

use url::Url;

/// Settings of a [`TokenVerifier`](crate::TokenVerifier).
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// The issuer's identifier, compared verbatim with the `iss` claim (a trailing `/` aside).
    pub issuer: String,
    /// The audience this API answers to; also the `realm` of its `WWW-Authenticate` challenges.
    pub audience: String,
    /// Where the keys are; `None` reads `jwks_uri` from the issuer's RFC 8414 metadata.
    pub jwks_url: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The shortest time between two refetches triggered by tokens signed with an unknown
    /// `kid`. The first such refetch after a quiet spell is immediate (an emergency rotation
    /// costs no refusals); later ones wait at least this long.
    pub unknown_kid_min_interval: Duration,
    /// The longest wait between two unknown-`kid` refetches: while refetches keep finding
    /// nothing new (a flood of made-up `kid`s), the wait doubles from
    /// [`unknown_kid_min_interval`](Self::unknown_kid_min_interval) up to this, which is then
    /// the steady cost of a flood: one JWKS fetch per cooldown. Zero turns the limit off.
    pub unknown_kid_cooldown: Duration,
    /// Allows fetching metadata and keys over plain `http` from hosts other than loopback.
    /// Off: only `https`, or `http` to `localhost`, `127.0.0.0/8` or `[::1]`, is used, because
    /// whoever can change the keys in transit can mint tokens.
    pub allow_insecure_jwks_url: bool,
    /// Time limit of one request to the issuer.
    pub fetch_timeout: Duration,
    /// Longest token accepted, in bytes, before any parsing.
    pub max_token_bytes: usize,
    /// The API's public base URL as its clients call it (`https://players.example`, a path
    /// prefix allowed): a DPoP proof's `htu` must be this plus the request's path. `None`
    /// rebuilds it from the `Host` header as `http://{host}`, which only fits development
    /// without a gateway: behind one (TLS, another host name, a path prefix) set it.
    pub public_url: Option<String>,
    /// How old a DPoP proof's `iat` may be; proofs are remembered this long to refuse replays.
    pub dpop_max_age: Duration,
    /// Refuse tokens that are not DPoP-bound (RFC 9449 §7.1), instead of accepting both.
    pub require_dpop: bool,
    /// The scopes the API's operations ask for, listed as `scopes_supported` in its RFC 9728
    /// metadata. Empty leaves the field out.
    pub scopes_supported: Vec<String>,
}

impl VerifierConfig {
    /// Defaults: 60 s leeway, unknown-`kid` refetches at most once a second backing off to
    /// once per 5 s, 5 s fetch timeout, 8 KiB tokens, keys discovered, `https` (or loopback).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            leeway: Duration::from_secs(60),
            unknown_kid_min_interval: Duration::from_secs(1),
            unknown_kid_cooldown: Duration::from_secs(5),
            allow_insecure_jwks_url: false,
            fetch_timeout: Duration::from_secs(5),
            max_token_bytes: 8 * 1024,
            public_url: None,
            dpop_max_age: Duration::from_secs(300),
            require_dpop: false,
            scopes_supported: Vec::new(),
        }
    }

    /// The issuer without a trailing slash, the form compared with `iss`.
    pub(crate) fn issuer_trimmed(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// RFC 8414 §3: the metadata URL, with the well-known segment before any issuer path.
    /// Only fetched when no `jwks_url` is configured; checked for transport security then.
    pub(crate) fn metadata_url(&self) -> Result<Url, ConfigError> {
        let issuer = parse_http_url("issuer", &self.issuer)?;
        let path = issuer.path().trim_end_matches('/').to_owned();
        let mut url = issuer;
        url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        url.set_query(None);
        Ok(url)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let issuer = parse_http_url("issuer", &self.issuer)?;
        if self.audience.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "audience",
                reason: "must not be empty".into(),
            });
        }
        if self.audience.contains(['"', '\\']) || self.audience.chars().any(char::is_control) {
            return Err(ConfigError::Invalid {
                key: "audience",
                reason: "must not contain quotes, backslashes or control characters".into(),
            });
        }
        if let Some(public_url) = &self.public_url {
            let url = parse_http_url("public_url", public_url)?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(ConfigError::Invalid {
                    key: "public_url",
                    reason: "must have no query or fragment".into(),
                });
            }
            // It is published (RFC 9728 `resource`, challenges): never with credentials.
            if !url.username().is_empty() || url.password().is_some() {
                return Err(ConfigError::Invalid {
                    key: "public_url",
                    reason: "must have no user name or password".into(),
                });
            }
        }
        if self.dpop_max_age.is_zero() {
            return Err(ConfigError::Invalid {
                key: "dpop_max_age",
                reason: "must be more than zero".into(),
            });
        }
        match &self.jwks_url {
            Some(jwks_url) => {
                let url = parse_http_url("jwks_url", jwks_url)?;
                check_transport("jwks_url", &url, self.allow_insecure_jwks_url)
            }
            // The keys are found through the issuer's metadata, so the issuer is fetched.
            None => check_transport("issuer", &issuer, self.allow_insecure_jwks_url),
        }
    }
}

pub(crate) fn parse_http_url(key: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|err| ConfigError::Invalid {
        key,
        reason: err.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be an http or https URL".into(),
        });
    }
    Ok(url)
}

/// Refuses a plain `http` URL to a host other than loopback, unless `allow_insecure` (RFC 8414
/// §3 and RFC 7517 want TLS: whoever rewrites the JWKS in transit can mint tokens).
pub(crate) fn check_transport(
    key: &'static str,
    url: &Url,
    allow_insecure: bool,
) -> Result<(), ConfigError> {
    if url.scheme() == "https" || allow_insecure || is_loopback(url) {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key,
        reason: format!(
            "{url} is plain http to a host that is not loopback: use https, or set \
             allow_insecure_jwks_url on a network you trust"
        ),
    })
}

/// `localhost`, `127.0.0.0/8` or `[::1]`: the hosts plain `http` may reach without leaving the
/// machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A [`VerifierConfig`] that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_of_a_host_issuer_is_under_the_root() {
        let config = VerifierConfig::new("http://localhost:9000", "players-api");
        assert_eq!(
            config.metadata_url().unwrap().as_str(),
            "http://localhost:9000/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn metadata_url_of_an_issuer_with_a_path_puts_the_path_last() {
        let config = VerifierConfig::new("https://gw.example/tenant/", "players-api");
        assert_eq!(
            config.metadata_url().unwrap().as_str(),
            "https://gw.example/.well-known/oauth-authorization-server/tenant"
        );
    }

    #[test]
    fn a_public_url_with_credentials_is_refused_because_it_is_published() {
        let mut config = VerifierConfig::new("https://issuer.example", "a");
        config.public_url = Some("https://user:pw@api.example".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("public_url") && err.contains("user name"),
            "{err}"
        );
        config.public_url = Some("https://api.example/scouting".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn an_issuer_that_is_not_an_http_url_is_refused_by_name() {
        let err = VerifierConfig::new("ftp://x", "a").validate().unwrap_err();
        assert!(err.to_string().contains("issuer"), "{err}");
    }

    #[test]
    fn plain_http_to_a_host_that_is_not_loopback_is_refused_by_name() {
        let mut config = VerifierConfig::new("https://issuer.example", "a");
        config.jwks_url = Some("http://auth-server:9000/.well-known/jwks.json".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("jwks_url") && err.contains("allow_insecure_jwks_url"),
            "{err}"
        );

        let err = VerifierConfig::new("http://issuer.example", "a")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("issuer") && err.contains("https"), "{err}");
    }

    #[test]
    fn plain_http_to_loopback_or_when_allowed_is_accepted() {
        for url in [
            "http://localhost:9000",
            "http://LOCALHOST",
            "http://127.0.0.1:9000",
            "http://127.8.9.10",
            "http://[::1]:9000",
            "https://issuer.example",
        ] {
            assert!(VerifierConfig::new(url, "a").validate().is_ok(), "{url}");
        }
        let mut config = VerifierConfig::new("http://issuer.example", "a");
        config.allow_insecure_jwks_url = true;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_issuer_is_only_an_identifier_when_the_jwks_url_is_configured() {
        let mut config = VerifierConfig::new("http://issuer.example", "a");
        config.jwks_url = Some("https://keys.example/jwks.json".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn an_audience_with_a_quote_is_refused_because_it_becomes_the_realm() {
        let err = VerifierConfig::new("http://x", "a\"b")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("audience"), "{err}");
    }
}
