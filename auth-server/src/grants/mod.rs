//! Token issuance and the token lifecycle: client authentication (throttled), one module per
//! grant type, introspection and revocation. Each part owns its inputs and depends on the small
//! traits of `crate::stores` and on `TokenSigner`; no web types here (`api::token` maps the
//! errors to the RFC 6749 §5.2 wire shape).

mod assertion;
mod authenticate;
mod client_credentials;
mod dpop;
mod introspection;
mod mint;
mod password;
mod refresh_token;
mod rehash;
mod revocation;
mod token_exchange;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub use assertion::{
    ASSERTION_ALGORITHMS, AssertionVerifier, JWT_BEARER, KeySource, TrustedIssuer,
};
pub use authenticate::ClientAuthenticator;
pub use dpop::DpopGate;
pub use introspection::Introspection;
pub use mint::Minter;
pub use revocation::RevokeError;
pub use token_exchange::ACCESS_TOKEN_TYPE;

use crate::crypto::{SecretVerifier, TokenSigner};
use crate::domain::{Client, GrantType, ScopeSet, Target, TokenRequestTarget};
use crate::stores::{ClientStore, StoreError, TokenStore, UserStore};
use crate::throttle::{Throttle, ThrottleKey};

/// How the client presented its credentials (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// In the request body (`client_secret_post`, form or JSON).
    Post,
    /// A signed JWT (`private_key_jwt`, or a federated workload identity).
    Assertion,
}

/// The client authentication a request carries: a secret, or a signed assertion.
#[derive(Debug)]
pub enum Credentials {
    Secret(ClientCredentials),
    Assertion(ClientAssertion),
}

/// `client_assertion` (RFC 7521 §4.2), with the request's `client_id` if it sent one; never
/// logged.
pub struct ClientAssertion {
    pub client_id: Option<String>,
    pub assertion: String,
}

impl std::fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertion")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Client credentials as received; never logged.
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub method: AuthMethod,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// The grant-specific part of a token request, already free of the wire format. Never logged
/// (it may hold a password or a refresh token).
#[derive(Clone, Default)]
pub struct TokenParameters {
    pub grant_type: String,
    pub scope: Option<String>,
    pub target: TokenRequestTarget,
    pub username: Option<String>,
    pub password: Option<String>,
    pub refresh_token: Option<String>,
    /// The request's one `DPoP` header (RFC 9449), if it sent one.
    pub dpop_proof: Option<String>,
    /// Token exchange (RFC 8693 §2.1): the token to act on, and the types asked and given.
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    /// Refused when present: the authenticated client is the actor.
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    /// The `jti` of the access token.
    pub jti: String,
    pub expires_in: u32,
    /// When the access token expires, in seconds since the epoch.
    pub expires_at: i64,
    pub scope: ScopeSet,
    pub refresh_token: Option<String>,
    /// Bound to a DPoP key (`cnf.jkt`): its `token_type` is `DPoP`.
    pub dpop_bound: bool,
    /// RFC 8693 §2.2.1 `issued_token_type`, for a token exchange's answer.
    pub issued_token_type: Option<&'static str>,
}

/// Every way a token request can fail, in RFC 6749 §5.2 terms.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client")]
    InvalidClient { method: Option<AuthMethod> },
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unauthorized_client")]
    UnauthorizedClient(GrantType),
    /// The client may use the grant, but the API asked for takes no tokens from it
    /// (`unauthorized_client` too: this client is not authorized to use it there).
    #[error("unauthorized_client: {api} refuses the grant")]
    GrantNotForApi { grant: GrantType, api: String },
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target")]
    InvalidTarget,
    /// RFC 9449 §5: a DPoP proof missing (for a client that must send one) or refused.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// RFC 9449 §8: the proof must carry this server nonce.
    #[error("use_dpop_nonce")]
    UseDpopNonce { nonce: String },
    /// Too many recent failures for this client, user or address.
    #[error("throttled")]
    Throttled { retry_after: Duration },
    /// A dependency (the database) cannot be reached now; the cause is logged, never sent.
    #[error("temporarily_unavailable: {0}")]
    Unavailable(String),
    /// Storage, hashing or signing failed; the cause is logged, never sent.
    #[error("server_error: {0}")]
    Internal(String),
}

impl TokenError {
    fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<StoreError> for TokenError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            other => Self::internal(other),
        }
    }
}

/// Where a request came from, for throttling.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSource {
    pub address: Option<IpAddr>,
}

impl RequestSource {
    fn bucket(&self) -> Option<IpAddr> {
        self.address.map(crate::throttle::address_bucket)
    }

    /// The throttle keys of a failure by `identity` (a validated name) from this source: the
    /// identity from this address, the identity from anywhere, and the address.
    fn keys(&self, identity: Option<ThrottleKey>) -> Vec<ThrottleKey> {
        let name = match &identity {
            Some(ThrottleKey::Client(name, _)) => Some(ThrottleKey::ClientName(name.clone())),
            Some(ThrottleKey::User(name, _)) => Some(ThrottleKey::UserName(name.clone())),
            _ => None,
        };
        identity
            .into_iter()
            .chain(name)
            .chain(self.bucket().map(ThrottleKey::Address))
            .collect()
    }
}

/// How long what the server issues lives.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// `iss` of every token.
    pub issuer: String,
    pub access_ttl_secs: u32,
    pub refresh_ttl_secs: u32,
    /// A chain of refreshes from one login ends this long after the login.
    pub refresh_chain_max_secs: u32,
}

/// What the token service is built from.
pub struct TokenDependencies {
    pub clients: Arc<dyn ClientStore>,
    pub users: Arc<dyn UserStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub signer: Arc<dyn TokenSigner>,
    pub secrets: Arc<SecretVerifier>,
    pub throttle: Arc<Throttle>,
    pub assertions: Arc<AssertionVerifier>,
    pub dpop: Arc<DpopGate>,
}

/// The token endpoint's use cases, and introspection and revocation.
pub struct TokenService {
    authenticator: ClientAuthenticator,
    dpop: Arc<DpopGate>,
    minter: Minter,
    password: password::PasswordGrant,
    refresh: refresh_token::RefreshGrant,
    lookup: introspection::TokenLookup,
    revoker: revocation::Revoker,
}

impl TokenService {
    pub fn new(deps: TokenDependencies, policy: TokenPolicy) -> Self {
        let minter = Minter::new(
            deps.signer.clone(),
            policy.issuer.clone(),
            policy.access_ttl_secs,
        );
        let refresh_policy = refresh_token::RefreshPolicy {
            ttl_secs: policy.refresh_ttl_secs,
            chain_max_secs: policy.refresh_chain_max_secs,
        };
        let lookup = introspection::TokenLookup {
            signer: deps.signer.clone(),
            tokens: deps.tokens.clone(),
            users: deps.users.clone(),
            issuer: policy.issuer.clone(),
        };
        Self {
            authenticator: ClientAuthenticator::new(
                deps.clients,
                deps.secrets.clone(),
                deps.throttle.clone(),
                deps.assertions,
            ),
            dpop: deps.dpop,
            password: password::PasswordGrant {
                users: deps.users.clone(),
                tokens: deps.tokens.clone(),
                secrets: deps.secrets,
                throttle: deps.throttle,
                refresh: refresh_policy.clone(),
            },
            refresh: refresh_token::RefreshGrant {
                users: deps.users,
                tokens: deps.tokens.clone(),
                policy: refresh_policy,
            },
            revoker: revocation::Revoker {
                signer: deps.signer,
                tokens: deps.tokens,
                issuer: policy.issuer,
            },
            lookup,
            minter,
        }
    }

    /// Handles one token request.
    pub async fn issue(
        &self,
        credentials: Option<Credentials>,
        params: TokenParameters,
        source: RequestSource,
    ) -> Result<IssuedToken, TokenError> {
        let client = self.authenticator.authenticate(credentials, source).await?;
        let binding = self
            .dpop
            .check(
                params.dpop_proof.as_deref(),
                client.dpop_bound,
                crate::clock::now_secs(),
            )
            .await
            .map_err(|err| match err {
                dpop::DpopError::Invalid(why) => TokenError::InvalidDpopProof(why.to_string()),
                dpop::DpopError::Required => TokenError::InvalidDpopProof(err.to_string()),
                dpop::DpopError::UseNonce(nonce) => TokenError::UseDpopNonce { nonce },
                dpop::DpopError::Store(err) => err.into(),
            })?;
        let bound_minter;
        let minter = match binding {
            Some(jkt) => {
                bound_minter = self.minter.bound_to(jkt);
                &bound_minter
            }
            None => &self.minter,
        };
        let grant = match params.grant_type.as_str() {
            "client_credentials" => GrantType::ClientCredentials,
            "password" => GrantType::Password,
            "refresh_token" => GrantType::RefreshToken,
            crate::domain::TOKEN_EXCHANGE => GrantType::TokenExchange,
            _ => return Err(TokenError::UnsupportedGrantType),
        };
        if !client.may_use(grant) {
            if grant == GrantType::RefreshToken {
                self.refresh.revoke_unauthorized(&client, &params).await?;
            }
            return Err(TokenError::UnauthorizedClient(grant));
        }
        match grant {
            GrantType::ClientCredentials => client_credentials::issue(minter, &client, &params),
            GrantType::Password => self.password.issue(minter, &client, &params, source).await,
            GrantType::RefreshToken => self.refresh.issue(minter, &client, &params).await,
            GrantType::TokenExchange => {
                token_exchange::issue(&self.lookup, minter, &client, &params).await
            }
        }
    }

    /// A fresh DPoP nonce, when the server requires them.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.current_nonce(crate::clock::now_secs())
    }

    /// Authenticates the calling client of introspection or revocation.
    pub async fn authenticate(
        &self,
        credentials: Option<Credentials>,
        source: RequestSource,
    ) -> Result<Arc<Client>, TokenError> {
        self.authenticator.authenticate(credentials, source).await
    }

    pub async fn introspect(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
    ) -> Result<Introspection, TokenError> {
        self.lookup.introspect(caller, token, hint).await
    }

    pub async fn revoke(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(), RevokeError> {
        self.revoker.revoke(caller, token, hint).await
    }
}

/// `GrantNotForApi` unless the API `target` takes tokens from `grant`.
fn api_takes(target: &Target, grant: GrantType) -> Result<(), TokenError> {
    if target.allows(grant) {
        Ok(())
    } else {
        Err(TokenError::GrantNotForApi {
            grant,
            api: target.audience.as_str().to_owned(),
        })
    }
}

/// The scope a token gets: what was asked for, which must be within `allowed`; by default all of
/// `allowed`.
pub fn granted_scope(requested: Option<&str>, allowed: &ScopeSet) -> Result<ScopeSet, TokenError> {
    let Some(requested) = requested else {
        return Ok(allowed.clone());
    };
    let requested =
        ScopeSet::parse(requested).map_err(|e| TokenError::InvalidScope(e.to_string()))?;
    if requested.is_empty() {
        return Ok(allowed.clone());
    }
    if !requested.is_subset_of(allowed) {
        return Err(TokenError::InvalidScope(
            "the requested scope exceeds what may be granted".into(),
        ));
    }
    Ok(requested)
}

/// A new opaque refresh token (32 random bytes, base64url) and the hash it is stored under.
fn new_refresh_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// Refresh tokens carry 256 random bits, so a plain SHA-256 is enough to store them safely.
fn refresh_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_requested_scope_grants_everything_allowed() {
        let allowed = ScopeSet::parse("a b").unwrap();
        assert_eq!(granted_scope(None, &allowed).unwrap(), allowed);
        assert_eq!(granted_scope(Some("  "), &allowed).unwrap(), allowed);
    }

    #[test]
    fn a_requested_subset_is_granted_as_asked() {
        let allowed = ScopeSet::parse("a b").unwrap();
        assert_eq!(granted_scope(Some("b"), &allowed).unwrap().to_string(), "b");
    }

    #[test]
    fn a_scope_beyond_the_allowed_or_malformed_is_invalid_scope() {
        let allowed = ScopeSet::parse("a b").unwrap();
        assert!(matches!(
            granted_scope(Some("a c"), &allowed),
            Err(TokenError::InvalidScope(_))
        ));
        assert!(matches!(
            granted_scope(Some("a\""), &allowed),
            Err(TokenError::InvalidScope(_))
        ));
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_by_hash_only() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a, refresh_token_hash(&a));
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a));
    }
}
