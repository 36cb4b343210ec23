//! Token issuance and the token lifecycle: client authentication (throttled), one module per
//! grant type, introspection and revocation. No web types here; `api::token` maps the errors
//! to the RFC 6749 §5.2 wire shape.

mod client_credentials;
mod introspection;
mod password;
mod refresh_token;
mod revocation;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub use introspection::Introspection;
pub use revocation::RevokeError;

use crate::crypto::{SecretVerifier, TokenSigner};
use crate::domain::{
    AccessTokenClaims, Audience, Client, ClientId, GrantType, ScopeSet, TokenRequestTarget,
};
use crate::keys::{KeyRing, now_secs};
use crate::storage::{ClientRepository, TokenRepository, UserRepository};
use crate::throttle::{Throttle, ThrottleKey};

/// How the client presented its credentials (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// In the request body (`client_secret_post`, form or JSON).
    Post,
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
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u32,
    pub scope: ScopeSet,
    pub refresh_token: Option<String>,
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
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target")]
    InvalidTarget,
    /// Too many recent failures for this client, user or address.
    #[error("throttled")]
    Throttled { retry_after: Duration },
    /// Storage, hashing or signing failed; the cause is logged, never sent.
    #[error("server_error: {0}")]
    Internal(String),
}

impl TokenError {
    fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
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
    /// identity from this address, and the address.
    fn keys(&self, identity: Option<ThrottleKey>) -> Vec<ThrottleKey> {
        identity
            .into_iter()
            .chain(self.bucket().map(ThrottleKey::Address))
            .collect()
    }
}

pub struct TokenService {
    pub(crate) clients: ClientRepository,
    pub(crate) users: UserRepository,
    pub(crate) tokens: TokenRepository,
    pub(crate) secrets: Arc<SecretVerifier>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) signer: Arc<dyn TokenSigner>,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) issuer: String,
    pub(crate) ttl_secs: u32,
    pub(crate) refresh_ttl_secs: u32,
    pub(crate) refresh_chain_max_secs: u32,
}

impl TokenService {
    /// Handles one token request.
    pub async fn issue(
        &self,
        credentials: Option<ClientCredentials>,
        params: TokenParameters,
        source: RequestSource,
    ) -> Result<IssuedToken, TokenError> {
        let client = self.authenticate(credentials, source).await?;
        let grant = match params.grant_type.as_str() {
            "client_credentials" => GrantType::ClientCredentials,
            "password" => GrantType::Password,
            "refresh_token" => GrantType::RefreshToken,
            _ => return Err(TokenError::UnsupportedGrantType),
        };
        if !client.may_use(grant) {
            return Err(TokenError::UnauthorizedClient(grant));
        }
        match grant {
            GrantType::ClientCredentials => client_credentials::issue(self, &client, &params),
            GrantType::Password => password::issue(self, &client, &params, source).await,
            GrantType::RefreshToken => refresh_token::issue(self, &client, &params).await,
        }
    }

    /// Authenticates a client, throttling failures per client id and source address. An
    /// unknown client costs the same work as a wrong secret: no timing oracle on client ids.
    pub async fn authenticate(
        &self,
        credentials: Option<ClientCredentials>,
        source: RequestSource,
    ) -> Result<Client, TokenError> {
        let credentials = credentials.ok_or(TokenError::InvalidClient { method: None })?;
        let id = ClientId::parse(&credentials.client_id).ok();
        let keys = source.keys(
            id.as_ref()
                .map(|id| ThrottleKey::Client(id.as_str().to_owned(), source.bucket())),
        );
        self.throttle
            .check(&keys)
            .map_err(|retry_after| TokenError::Throttled { retry_after })?;
        let client = match &id {
            Some(id) => self.clients.find(id).await.map_err(TokenError::internal)?,
            None => None,
        };
        let verified = self
            .secrets
            .verify(
                client.as_ref().map(|c| c.secret_hash.as_str()),
                &credentials.client_secret,
            )
            .await
            .map_err(TokenError::internal)?;
        match client {
            Some(client) if verified => {
                if let Some(key) = keys.iter().find(|k| matches!(k, ThrottleKey::Client(..))) {
                    self.throttle.record_success(key);
                }
                Ok(client)
            }
            _ => {
                self.throttle.record_failure(&keys);
                // Only a well-formed id is logged: the raw value is attacker-controlled.
                tracing::debug!(
                    client_id = id.as_ref().map(ClientId::as_str),
                    "client authentication failed"
                );
                Err(TokenError::InvalidClient {
                    method: Some(credentials.method),
                })
            }
        }
    }

    fn sign(
        &self,
        subject: &str,
        client: &Client,
        audience: &Audience,
        scope: ScopeSet,
    ) -> Result<IssuedToken, TokenError> {
        let claims = AccessTokenClaims::new(
            &self.issuer,
            subject,
            audience,
            &client.id,
            &scope,
            now_secs(),
            i64::from(self.ttl_secs),
            uuid::Uuid::new_v4().to_string(),
        );
        let access_token = self.signer.sign(&claims).map_err(TokenError::internal)?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.ttl_secs,
            scope,
            refresh_token: None,
        })
    }

    /// An access token this server issued, still within its lifetime and not revoked.
    async fn live_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessTokenClaims>, TokenError> {
        let Some(claims) = self.keys.verify(token) else {
            return Ok(None);
        };
        if claims.iss != self.issuer || claims.exp <= now_secs() {
            return Ok(None);
        }
        if self
            .tokens
            .is_access_revoked(&claims.jti)
            .await
            .map_err(TokenError::internal)?
        {
            return Ok(None);
        }
        Ok(Some(claims))
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
