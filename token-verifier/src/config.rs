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
    /// Minimum time between two fetches triggered by tokens signed with an unknown `kid`.
    pub unknown_kid_cooldown: Duration,
    /// Time limit of one request to the issuer.
    pub fetch_timeout: Duration,
    /// Longest token accepted, in bytes, before any parsing.
    pub max_token_bytes: usize,
}

impl VerifierConfig {
    /// Defaults: 60 s leeway, 30 s cooldown, 5 s fetch timeout, 8 KiB tokens, keys discovered.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            leeway: Duration::from_secs(60),
            unknown_kid_cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            max_token_bytes: 8 * 1024,
        }
    }

    /// The issuer without a trailing slash, the form compared with `iss`.
    pub(crate) fn issuer_trimmed(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// RFC 8414 §3: the metadata URL, with the well-known segment before any issuer path.
    pub(crate) fn metadata_url(&self) -> Result<Url, ConfigError> {
        let issuer = parse_http_url("issuer", &self.issuer)?;
        let path = issuer.path().trim_end_matches('/').to_owned();
        let mut url = issuer;
        url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        url.set_query(None);
        Ok(url)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        parse_http_url("issuer", &self.issuer)?;
        if let Some(jwks_url) = &self.jwks_url {
            parse_http_url("jwks_url", jwks_url)?;
        }
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
        Ok(())
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
    fn an_issuer_that_is_not_an_http_url_is_refused_by_name() {
        let err = VerifierConfig::new("ftp://x", "a").validate().unwrap_err();
        assert!(err.to_string().contains("issuer"), "{err}");
    }

    #[test]
    fn an_audience_with_a_quote_is_refused_because_it_becomes_the_realm() {
        let err = VerifierConfig::new("http://x", "a\"b")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("audience"), "{err}");
    }
}
