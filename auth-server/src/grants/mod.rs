//! Token issuance: client authentication, then one module per grant type. No web types here;
//! `api::token` maps `TokenError` to the RFC 6749 §5.2 wire shape.

mod client_credentials;

use std::sync::Arc;

use crate::crypto::{SecretVerifier, TokenSigner};
use crate::domain::{
    AccessTokenClaims, Audience, Client, ClientId, GrantType, ScopeSet, TokenRequestTarget,
};
use crate::keys::now_secs;
use crate::storage::ClientRepository;

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

/// The grant-specific part of a token request, already free of the wire format.
#[derive(Debug, Clone, Default)]
pub struct TokenParameters {
    pub grant_type: String,
    pub scope: Option<String>,
    pub target: TokenRequestTarget,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u32,
    pub scope: ScopeSet,
    pub audience: Audience,
    pub client_id: ClientId,
}

/// Every way a token request can fail, in RFC 6749 §5.2 terms.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client")]
    InvalidClient { method: Option<AuthMethod> },
    #[error("unauthorized_client")]
    UnauthorizedClient(GrantType),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target")]
    InvalidTarget,
    /// Storage, hashing or signing failed; the cause is logged, never sent.
    #[error("server_error: {0}")]
    Internal(String),
}

pub struct TokenService {
    clients: ClientRepository,
    secrets: Arc<SecretVerifier>,
    signer: Arc<dyn TokenSigner>,
    issuer: String,
    ttl_secs: u32,
}

impl TokenService {
    pub fn new(
        clients: ClientRepository,
        secrets: Arc<SecretVerifier>,
        signer: Arc<dyn TokenSigner>,
        issuer: String,
        ttl_secs: u32,
    ) -> Self {
        Self {
            clients,
            secrets,
            signer,
            issuer,
            ttl_secs,
        }
    }

    /// Handles one token request.
    pub async fn issue(
        &self,
        credentials: Option<ClientCredentials>,
        params: TokenParameters,
    ) -> Result<IssuedToken, TokenError> {
        let credentials = credentials.ok_or(TokenError::InvalidClient { method: None })?;
        let client = self.authenticate(&credentials).await?;
        let grant = match params.grant_type.as_str() {
            "client_credentials" => GrantType::ClientCredentials,
            _ => return Err(TokenError::UnsupportedGrantType),
        };
        if !client.may_use(grant) {
            return Err(TokenError::UnauthorizedClient(grant));
        }
        match grant {
            GrantType::ClientCredentials => client_credentials::issue(self, &client, &params),
            GrantType::Password | GrantType::RefreshToken => Err(TokenError::UnsupportedGrantType),
        }
    }

    /// Same work for an unknown client as for a wrong secret: no timing oracle on client ids.
    async fn authenticate(&self, credentials: &ClientCredentials) -> Result<Client, TokenError> {
        let invalid = || TokenError::InvalidClient {
            method: Some(credentials.method),
        };
        let client = match ClientId::parse(&credentials.client_id) {
            Ok(id) => self
                .clients
                .find(&id)
                .await
                .map_err(|e| TokenError::Internal(e.to_string()))?,
            Err(_) => None,
        };
        let verified = self
            .secrets
            .verify(
                client.as_ref().map(|c| c.secret_hash.as_str()),
                &credentials.client_secret,
            )
            .await
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        match client {
            Some(client) if verified => Ok(client),
            _ => Err(invalid()),
        }
    }

    fn sign(
        &self,
        subject: &str,
        client: &Client,
        audience: Audience,
        scope: ScopeSet,
    ) -> Result<IssuedToken, TokenError> {
        let claims = AccessTokenClaims::new(
            &self.issuer,
            subject,
            &audience,
            &client.id,
            &scope,
            now_secs(),
            i64::from(self.ttl_secs),
            uuid::Uuid::new_v4().to_string(),
        );
        let access_token = self
            .signer
            .sign(&claims)
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.ttl_secs,
            scope,
            audience,
            client_id: client.id.clone(),
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
            "the requested scope exceeds what this client may have".into(),
        ));
    }
    Ok(requested)
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
}
