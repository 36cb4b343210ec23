//! Talks to the issuer: RFC 8414 metadata for `jwks_uri`, then the JWKS itself. Every
//! request has a time limit and a size limit, so a slow or hostile issuer cannot hold us.

use std::time::Duration;

use reqwest::{Client, header::CACHE_CONTROL};
use url::Url;

use crate::config::parse_http_url;

/// Largest metadata or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("the issuer metadata is unusable: {0}")]
    Metadata(String),
    #[error(transparent)]
    Jwks(#[from] crate::jwks::JwksError),
}

/// A fetched document and how long the issuer lets us cache it.
pub(crate) struct Document {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

pub(crate) async fn get(client: &Client, url: &Url) -> Result<Document, FetchError> {
    let http = |source| FetchError::Http {
        url: url.to_string(),
        source,
    };
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
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
/// (RFC 8414 §3.3).
pub(crate) async fn discover_jwks_url(
    client: &Client,
    metadata_url: &Url,
    issuer: &str,
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
    parse_http_url("jwks_uri", jwks_uri).map_err(|err| FetchError::Metadata(err.to_string()))
}
