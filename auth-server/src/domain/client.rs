//! OAuth clients: identifiers, audiences, allowed grants.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::scope::ScopeSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1 to 128 printable ASCII characters without spaces")]
pub struct InvalidName {
    pub what: &'static str,
}

fn is_name(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// A client identifier (RFC 6749 §2.2), restricted to visible ASCII without spaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        if is_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidName { what: "client_id" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An audience: the identifier of a resource server a token is meant for (RFC 8707 / RFC 9068 `aud`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Audience(String);

impl Audience {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        if is_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidName { what: "audience" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The grants a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantType {
    ClientCredentials,
    Password,
    RefreshToken,
    /// RFC 8693 token exchange: a token for another API, on behalf of a subject token's `sub`.
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => TOKEN_EXCHANGE,
        }
    }
}

/// The `grant_type` of RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl FromStr for GrantType {
    type Err = InvalidName;

    /// The wire names; `token-exchange` also names the RFC 8693 grant in configuration.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value == "token-exchange" {
            return Ok(GrantType::TokenExchange);
        }
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == value)
            .ok_or(InvalidName { what: "grant_type" })
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client proves who it is at the token endpoint: one method per client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientAuthentication {
    /// `client_secret_basic` or `client_secret_post`: the secret's hash is `secret_hash`.
    #[default]
    Secret,
    /// `private_key_jwt` (RFC 7523 §2.2): an assertion signed by one of its keys.
    PrivateKeyJwt(ClientKeys),
    /// Workload identity federation: an assertion by a trusted external issuer (a Kubernetes
    /// cluster's service-account token) about this one subject.
    Federated { issuer: String, subject: String },
}

impl ClientAuthentication {
    /// The name stored, listed and advertised (`token_endpoint_auth_method` style).
    pub fn method_name(&self) -> &'static str {
        match self {
            ClientAuthentication::Secret => "client_secret",
            ClientAuthentication::PrivateKeyJwt(_) => "private_key_jwt",
            ClientAuthentication::Federated { .. } => "federated",
        }
    }
}

/// Where a `private_key_jwt` client's public keys are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKeys {
    /// A JWKS document, registered with the client.
    Jwks(String),
    /// Fetched from the client's `jwks_uri` (and cached).
    JwksUri(String),
}

/// A registered client as the token endpoint sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    /// argon2id PHC string; the secret itself is never stored. Empty for clients that
    /// authenticate without a secret.
    pub secret_hash: String,
    /// How it authenticates.
    pub authentication: ClientAuthentication,
    /// Its access tokens must be DPoP-bound (RFC 9449 `dpop_bound_access_tokens`).
    pub dpop_bound: bool,
    pub scopes: ScopeSet,
    /// The first one is the default audience.
    pub audiences: Vec<Audience>,
    pub grant_types: BTreeSet<GrantType>,
    /// The APIs this client may get tokens for on behalf of a subject (RFC 8693); the first is
    /// the default target. Empty: no exchange.
    pub exchange_to: Vec<Audience>,
    /// Its access tokens live at most this long (the server's `token_ttl_secs` still bounds
    /// them); `None`: the server's.
    pub token_ttl_secs: Option<u32>,
    /// Claims added to every access token issued to it (a tenant id, say); never a registered
    /// one ([`StaticClaims`] checks).
    pub claims: StaticClaims,
    /// The registered APIs among its audiences and exchange targets, as the store read them
    /// with the client.
    pub apis: Vec<std::sync::Arc<super::api::Api>>,
}

/// A client's static claims: names that are not registered JWT / RFC 9068 / RFC 8693 / RFC
/// 9449 claims, any JSON values, at most [`StaticClaims::MAX_BYTES`] as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticClaims(BTreeMap<String, serde_json::Value>);

/// Why a set of static claims is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidClaims {
    #[error("{0} is a registered claim the server sets itself")]
    Registered(String),
    #[error("claim names are 1 to 64 letters, digits, '_', '-', '.' or ':'")]
    Name,
    #[error("at most 1024 bytes of claims")]
    TooLarge,
}

impl StaticClaims {
    pub const MAX_BYTES: usize = 1024;

    /// The claims the server sets, or that mean something to token consumers it does not want
    /// a configuration to fake.
    pub const REGISTERED: [&'static str; 15] = [
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "scope",
        "auth_time",
        "acr",
        "amr",
        "cnf",
        "act",
        "may_act",
    ];

    pub fn parse(claims: BTreeMap<String, serde_json::Value>) -> Result<Self, InvalidClaims> {
        for name in claims.keys() {
            if Self::REGISTERED.contains(&name.as_str()) {
                return Err(InvalidClaims::Registered(name.clone()));
            }
            let valid = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
            if !valid {
                return Err(InvalidClaims::Name);
            }
        }
        let size = serde_json::to_vec(&claims).map_or(usize::MAX, |json| json.len());
        if size > Self::MAX_BYTES {
            return Err(InvalidClaims::TooLarge);
        }
        Ok(Self(claims))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.0
    }
}

impl Client {
    pub fn may_use(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// What it takes to register a client (the secret is hashed by the caller).
#[derive(Debug, Clone)]
pub struct NewClient {
    pub id: ClientId,
    /// Empty unless `authentication` is `Secret`.
    pub secret_hash: String,
    pub authentication: ClientAuthentication,
    pub dpop_bound: bool,
    pub scopes: ScopeSet,
    pub audiences: Vec<Audience>,
    pub grant_types: BTreeSet<GrantType>,
    pub exchange_to: Vec<Audience>,
    pub token_ttl_secs: Option<u32>,
    pub claims: StaticClaims,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_visible_ascii_without_spaces() {
        assert!(ClientId::parse("foobarbaz").is_ok());
        assert!(ClientId::parse("svc-1.example_x").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("has space").is_err());
        assert!(ClientId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn static_claims_may_not_be_registered_ones_or_oddly_named_or_large() {
        let map = |pairs: &[(&str, serde_json::Value)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(StaticClaims::parse(map(&[("tenant", "acme".into())])).is_ok());
        for registered in StaticClaims::REGISTERED {
            assert_eq!(
                StaticClaims::parse(map(&[(registered, "x".into())])),
                Err(InvalidClaims::Registered(registered.into()))
            );
        }
        assert_eq!(
            StaticClaims::parse(map(&[("has space", 1.into())])),
            Err(InvalidClaims::Name)
        );
        assert_eq!(
            StaticClaims::parse(map(&[("big", "x".repeat(1100).into())])),
            Err(InvalidClaims::TooLarge)
        );
    }

    #[test]
    fn grant_types_round_trip_through_their_wire_names() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>().unwrap(), g);
        }
        assert!("authorization_code".parse::<GrantType>().is_err());
    }
}
