//! Token revocation (RFC 7009). A refresh token is revoked with its whole chain; an access
//! token by its `jti` until it expires (introspection then reports it inactive; resource
//! servers that verify JWTs locally keep accepting it until `exp`, which is why access tokens
//! are short-lived). Unknown tokens are not an error.

use super::{TokenService, refresh_token_hash};
use crate::domain::Client;
use crate::keys::now_secs;

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The token was issued to another client.
    #[error("the token was not issued to this client")]
    NotYours,
    #[error("{0}")]
    Internal(String),
}

fn internal(err: impl std::fmt::Display) -> RevokeError {
    RevokeError::Internal(err.to_string())
}

impl TokenService {
    /// `Err(NotYours)` when the token belongs to another client.
    pub async fn revoke(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(), RevokeError> {
        let now = now_secs();
        let refresh = if hint == Some("access_token") && self.keys.verify(token).is_some() {
            None
        } else {
            self.tokens
                .find_refresh(&refresh_token_hash(token))
                .await
                .map_err(internal)?
        };
        if let Some(record) = refresh {
            if record.client_id != caller.id.as_str() {
                return Err(RevokeError::NotYours);
            }
            self.tokens
                .revoke_chain(&record.chain_id, now)
                .await
                .map_err(internal)?;
            tracing::info!(client_id = %caller.id, username = record.username, "refresh token chain revoked");
            return Ok(());
        }
        if let Some(claims) = self.keys.verify(token) {
            if claims.iss != self.issuer || claims.exp <= now {
                return Ok(());
            }
            if claims.client_id != caller.id.as_str() {
                return Err(RevokeError::NotYours);
            }
            self.tokens
                .revoke_access(&claims.jti, claims.exp)
                .await
                .map_err(internal)?;
            tracing::info!(client_id = %caller.id, jti = claims.jti, "access token revoked");
        }
        Ok(())
    }
}
