//! Token revocation (RFC 7009). A refresh token is revoked with its whole chain (and the access
//! tokens issued with it); an access token by its `jti` until it expires (introspection then
//! reports it inactive; resource servers that verify JWTs locally keep accepting it until
//! `exp`, which is why access tokens are short-lived). Unknown tokens are not an error.

use std::sync::Arc;

use super::refresh_token_hash;
use crate::clock::now_secs;
use crate::crypto::TokenSigner;
use crate::domain::Client;
use crate::stores::{StoreError, TokenStore};

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The token was issued to another client.
    #[error("the token was not issued to this client")]
    NotYours,
    /// The database cannot be reached now.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for RevokeError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            other => Self::Internal(other.to_string()),
        }
    }
}

pub(super) struct Revoker {
    pub signer: Arc<dyn TokenSigner>,
    pub tokens: Arc<dyn TokenStore>,
    pub issuer: String,
}

impl Revoker {
    /// `Err(NotYours)` when the token belongs to another client.
    pub(super) async fn revoke(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(), RevokeError> {
        let now = now_secs();
        let access = self.signer.verify(token);
        let refresh = if hint == Some("access_token") && access.is_some() {
            None
        } else {
            self.tokens.find_refresh(&refresh_token_hash(token)).await?
        };
        if let Some(record) = refresh {
            if record.client_id != caller.id.as_str() {
                return Err(RevokeError::NotYours);
            }
            self.tokens.revoke_chain(&record.chain_id, now).await?;
            tracing::info!(client_id = %caller.id, username = record.username, "refresh token chain revoked");
            return Ok(());
        }
        if let Some(claims) = access {
            if claims.iss != self.issuer || claims.exp <= now {
                return Ok(());
            }
            if claims.client_id != caller.id.as_str() {
                return Err(RevokeError::NotYours);
            }
            self.tokens.revoke_access(&claims.jti, claims.exp).await?;
            tracing::info!(client_id = %caller.id, jti = claims.jti, "access token revoked");
        }
        Ok(())
    }
}
