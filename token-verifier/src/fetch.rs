//! Talks to the issuer: RFC 8414 metadata for `jwks_uri`, then the JWKS itself. Every
//! request has a time limit and a size limit, so a slow or hostile issuer cannot hold us.

use std::time::Duration;

use reqwest::{Client, header::CACHE_CONTROL, redirect};
use url::Url;

use crate::config::{ConfigError, VerifierConfig, check_transport, parse_http_url};

/// Largest metadata or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Longest chain of same-origin redirects followed.
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request to {url} failed: {detail}")]
    Http { url: String, detail: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("the issuer metadata is unusable: {0}")]
    Metadata(String),
    #[error(transparent)]
    Jwks(#[from] crate::jwks::JwksError),
}

/// The HTTP client every fetch uses: time limits, and redirects followed only within the
/// origin first asked (an `https` → `http` redirect, or one to another host, is an error).
pub(crate) fn client(config: &VerifierConfig) -> Result<Client, ConfigError> {
    client_with_timeout(config.fetch_timeout)
}

/// The same client, with `timeout` on each request.
pub(crate) fn client_with_timeout(timeout: Duration) -> Result<Client, ConfigError> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(redirect::Policy::custom(same_origin_redirects))
        .user_agent(concat!("token-verifier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| ConfigError::Invalid {
            key: "fetch_timeout",
            reason: err.to_string(),
        })
}

fn same_origin_redirects(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let refusal = match attempt.previous().first() {
        Some(first) if first.origin() != attempt.url().origin() => {
            format!("refused a redirect from {first} to another origin")
        }
        _ if attempt.previous().len() > MAX_REDIRECTS => {
            format!("refused more than {MAX_REDIRECTS} redirects")
        }
        _ => return attempt.follow(),
    };
    attempt.error(refusal)
}

/// A reqwest error with its causes, which name what actually went wrong.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A fetched document and how long the issuer lets us cache it.
pub(crate) struct Document {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// Inside a span (`otel.kind = client`), so a trace shows the fetch and how long it took.
pub(crate) async fn get(client: &Client, url: &Url) -> Result<Document, FetchError> {
    let span = tracing::info_span!(
        "fetch",
        otel.name = "GET issuer document",
        otel.kind = "client",
        url.full = %url,
        http.response.status_code = tracing::field::Empty,
    );
    tracing::Instrument::instrument(get_unobserved(client, url), span).await
}

async fn get_unobserved(client: &Client, url: &Url) -> Result<Document, FetchError> {
    let http = |err: reqwest::Error| FetchError::Http {
        url: url.to_string(),
        detail: describe(&err),
    };
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    tracing::Span::current().record("http.response.status_code", response.status().as_u16());
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let max_age = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::jwks::max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Document { body, max_age })
}

/// Reads `jwks_uri` from the issuer's metadata, checking the metadata speaks for that issuer
/// (RFC 8414 §3.3) and that the keys are fetched over a transport we accept.
pub(crate) async fn discover_jwks_url(
    client: &Client,
    metadata_url: &Url,
    issuer: &str,
    allow_insecure: bool,
) -> Result<Url, FetchError> {
    let document = get(client, metadata_url).await?;
    let metadata: serde_json::Value = serde_json::from_slice(&document.body)
        .map_err(|_| FetchError::Metadata("not JSON".into()))?;
    let claimed_issuer = metadata
        .get("issuer")
        .and_then(|value| value.as_str())
        .ok_or_else(|| FetchError::Metadata("no issuer".into()))?;
    if claimed_issuer.trim_end_matches('/') != issuer {
        return Err(FetchError::Metadata(format!(
            "it names issuer {claimed_issuer}, not {issuer}"
        )));
    }
    let jwks_uri = metadata
        .get("jwks_uri")
        .and_then(|value| value.as_str())
        .ok_or_else(|| FetchError::Metadata("no jwks_uri".into()))?;
    let url = parse_http_url("jwks_uri", jwks_uri)
        .map_err(|err| FetchError::Metadata(err.to_string()))?;
    check_transport("jwks_uri", &url, allow_insecure)
        .map_err(|err| FetchError::Metadata(err.to_string()))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_differ_by_scheme_host_or_port_but_not_by_path() {
        let origin = |url: &str| Url::parse(url).unwrap().origin();
        assert_eq!(
            origin("https://keys.example/a"),
            origin("https://keys.example:443/b?c")
        );
        for other in [
            "http://keys.example/a",
            "https://keys.example:8443/a",
            "https://evil.example/a",
        ] {
            assert_ne!(origin("https://keys.example/a"), origin(other), "{other}");
        }
    }
}
