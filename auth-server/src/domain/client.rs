//! OAuth clients: identifiers, audiences, allowed grants.

use std::collections::BTreeSet;
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
    fn grant_types_round_trip_through_their_wire_names() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>().unwrap(), g);
        }
        assert!("authorization_code".parse::<GrantType>().is_err());
    }
}
