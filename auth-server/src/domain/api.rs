//! Registered APIs (resource servers): the audience a token is for, the resource URI that names
//! it (RFC 8707), the scopes it defines, and its own policy (token lifetime, grants).

use std::collections::BTreeSet;

use super::client::{Audience, GrantType};
use super::scope::ScopeSet;

/// A registered API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Its identifier: the `aud` of its tokens, and what `audience`/`resource` may name.
    pub id: Audience,
    /// Its resource indicator (RFC 8707 §2), normalized by [`normalize_resource`]: `resource`
    /// may name the API by it.
    pub resource: Option<String>,
    /// The scopes it defines: a token for it carries only these. `None` for an API registered
    /// by the upgrade from an audience, until its scopes are declared: its tokens carry the
    /// client's scopes, as before APIs were registered.
    pub scopes: Option<ScopeSet>,
    /// Its tokens live at most this long; `None`: no limit of its own.
    pub token_ttl_secs: Option<u32>,
    /// The grants a token for it may come from; `None`: any grant the client may use.
    pub grant_types: Option<BTreeSet<GrantType>>,
}

impl Api {
    /// True when `name` is its id or (normalized) its resource URI.
    pub fn is_named(&self, name: &str) -> bool {
        self.id.as_str() == name
            || self
                .resource
                .as_deref()
                .is_some_and(|resource| normalize_resource(name).as_deref() == Ok(resource))
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types
            .as_ref()
            .is_none_or(|grants| grants.contains(&grant))
    }
}

/// A resource URI as RFC 8707 §2 wants it: absolute, `https` (or `http` on a loopback host),
/// no fragment, no credentials. Returned in one canonical spelling (lower-case scheme and host,
/// no default port, no trailing `/` on an empty path) so that equal URIs compare equal.
pub fn normalize_resource(value: &str) -> Result<String, &'static str> {
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URI")?;
    if url.fragment().is_some() {
        return Err("must not have a fragment (RFC 8707 §2)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials");
    }
    match url.scheme() {
        "https" => {}
        "http" if token_verifier::is_loopback(&url) => {}
        _ => return Err("must be an https URI (http only on localhost)"),
    }
    let mut text = url.to_string();
    if url.path() == "/" && url.query().is_none() {
        text.pop();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_are_compared_in_one_spelling() {
        assert_eq!(
            normalize_resource("HTTPS://Players.Example:443/").unwrap(),
            "https://players.example"
        );
        assert_eq!(
            normalize_resource("https://api.example/scouting/").unwrap(),
            "https://api.example/scouting/"
        );
        assert_eq!(
            normalize_resource("http://localhost:9001").unwrap(),
            "http://localhost:9001"
        );
    }

    #[test]
    fn resource_uris_refuse_fragments_credentials_relative_and_plain_http() {
        for bad in [
            "players-api",
            "/players",
            "https://players.example/#x",
            "https://user:pw@players.example",
            "http://players.example",
            "ftp://players.example",
        ] {
            assert!(normalize_resource(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_api_is_named_by_its_id_or_its_resource_uri_and_limits_grants_when_told() {
        let api = Api {
            id: Audience::parse("players-api").unwrap(),
            resource: Some("https://players.example".into()),
            scopes: Some(ScopeSet::parse("players:read").unwrap()),
            token_ttl_secs: None,
            grant_types: Some(BTreeSet::from([GrantType::ClientCredentials])),
        };
        assert!(api.is_named("players-api"));
        assert!(api.is_named("https://players.example/"));
        assert!(api.is_named("https://PLAYERS.example"));
        assert!(!api.is_named("https://players.example/other"));
        assert!(!api.is_named("scouting-api"));
        assert!(api.allows(GrantType::ClientCredentials));
        assert!(!api.allows(GrantType::Password));
    }
}
