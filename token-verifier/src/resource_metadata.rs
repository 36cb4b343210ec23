//! RFC 9728 protected-resource metadata: the document an API publishes at
//! `/.well-known/oauth-protected-resource` so that a client holding only the API's URL can find
//! which issuer protects it, which scopes it knows and how tokens are to be presented; and the
//! URL of that document, which the API's `401` challenges name (`resource_metadata`, §5.1).

use serde::Serialize;
use url::Url;

use crate::{VerifierConfig, dpop};

/// The path of the document for a resource without a path (RFC 9728 §3).
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The document (RFC 9728 §2). Fields this verifier cannot vouch for are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "poem", derive(poem_openapi::Object))]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the API's public URL.
    pub resource: String,
    /// The issuers whose tokens the API accepts (one: the verifier's issuer).
    pub authorization_servers: Vec<String>,
    /// The scopes the API's operations ask for; left out when none are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "poem", oai(skip_serializing_if_is_none))]
    pub scopes_supported: Option<Vec<String>>,
    /// How a token is sent: the `Authorization` header only (`header`).
    pub bearer_methods_supported: Vec<String>,
    /// The algorithms a DPoP proof may be signed with (RFC 9449).
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether only DPoP-bound tokens are accepted.
    pub dpop_bound_access_tokens_required: bool,
}

impl ProtectedResourceMetadata {
    /// The document for `resource` (the API's public URL) under `config`.
    pub fn new(config: &VerifierConfig, resource: String) -> Self {
        Self {
            resource,
            // The issuer as its own RFC 8414 metadata names it (no trailing `/`), which is
            // what a client compares.
            authorization_servers: vec![config.issuer_trimmed().to_owned()],
            scopes_supported: Some(config.scopes_supported.clone())
                .filter(|scopes| !scopes.is_empty()),
            bearer_methods_supported: vec!["header".into()],
            dpop_signing_alg_values_supported: dpop::PROOF_ALGORITHMS
                .iter()
                .map(|alg| alg.name().to_owned())
                .collect(),
            dpop_bound_access_tokens_required: config.require_dpop,
        }
    }
}

/// An absolute `http(s)` URL split into its origin (normalised: lower-case host, no default
/// port) and its path without a trailing `/`.
fn origin_and_path(url: &str) -> Option<(String, String)> {
    let url = Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    Some((
        url.origin().ascii_serialization(),
        url.path().trim_end_matches('/').to_owned(),
    ))
}

/// The resource identifier for a configured public URL, in the same normal form as its
/// metadata URL: `https://GW.example:443/scouting/` → `https://gw.example/scouting`.
pub(crate) fn resource_identifier(public_url: &str) -> Option<String> {
    origin_and_path(public_url).map(|(origin, path)| format!("{origin}{path}"))
}

/// RFC 9728 §3.1: the document's URL for `resource` is the well-known path inserted between
/// the host and the resource's path: `https://gw.example/scouting` →
/// `https://gw.example/.well-known/oauth-protected-resource/scouting`. `None` for a value
/// that is not an absolute `http(s)` URL.
pub fn metadata_url(resource: &str) -> Option<String> {
    origin_and_path(resource).map(|(origin, path)| format!("{origin}{WELL_KNOWN_PATH}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_segment_goes_between_host_and_path() {
        assert_eq!(
            metadata_url("https://players.example").as_deref(),
            Some("https://players.example/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            metadata_url("https://players.example/").as_deref(),
            Some("https://players.example/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080/scouting").as_deref(),
            Some("http://127.0.0.1:8080/.well-known/oauth-protected-resource/scouting")
        );
        assert_eq!(
            metadata_url("https://GW.example:443/scouting/").as_deref(),
            Some("https://gw.example/.well-known/oauth-protected-resource/scouting")
        );
        assert_eq!(
            resource_identifier("https://GW.example:443/scouting/").as_deref(),
            Some("https://gw.example/scouting")
        );
        assert_eq!(metadata_url("players-api"), None);
        assert_eq!(metadata_url("ftp://players.example"), None);
    }

    #[test]
    fn the_document_names_the_issuer_scopes_and_dpop_rules() {
        let mut config = VerifierConfig::new("https://auth.example/", "players-api");
        config.scopes_supported = vec!["players:write".into()];
        config.require_dpop = true;
        let document = serde_json::to_value(ProtectedResourceMetadata::new(
            &config,
            "https://players.example".into(),
        ))
        .unwrap();
        assert_eq!(document["resource"], "https://players.example");
        assert_eq!(
            document["authorization_servers"],
            serde_json::json!(["https://auth.example"])
        );
        assert_eq!(
            document["scopes_supported"],
            serde_json::json!(["players:write"])
        );
        assert_eq!(
            document["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(document["dpop_bound_access_tokens_required"], true);
        assert!(
            document["dpop_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&"ES256".into())
        );

        config.scopes_supported.clear();
        let document = serde_json::to_value(ProtectedResourceMetadata::new(
            &config,
            "https://p.example".into(),
        ))
        .unwrap();
        assert!(document.get("scopes_supported").is_none());
    }
}
