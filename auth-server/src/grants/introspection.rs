//! Token introspection (RFC 7662) for authenticated clients. An access token is described to
//! the client it was issued to and to clients that share its audience (a resource server
//! registered as a client with that audience); a refresh token only to its own client. Anyone
//! else learns `active: false`.

use std::sync::Arc;

use super::{TokenError, refresh_token_hash};
use crate::clock::now_secs;
use crate::crypto::TokenSigner;
use crate::domain::{AccessTokenClaims, Actor, Client, Username};
use crate::stores::{TokenStore, UserStore};

/// What introspection says about a token; `Inactive` for anything not live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // made once per request and matched at once
pub enum Introspection {
    Inactive,
    Active {
        scope: String,
        client_id: String,
        username: Option<String>,
        sub: String,
        aud: String,
        iss: String,
        exp: i64,
        iat: i64,
        /// `Bearer` or `DPoP` (bound) for access tokens, `refresh_token` for refresh tokens.
        token_type: &'static str,
        jti: Option<String>,
        /// The DPoP key thumbprint a bound access token is bound to (`cnf.jkt`).
        jkt: Option<String>,
        /// RFC 8693 §4.1: who acts for `sub`, for a token made by a token exchange.
        act: Option<Actor>,
    },
}

pub(super) struct TokenLookup {
    pub signer: Arc<dyn TokenSigner>,
    pub tokens: Arc<dyn TokenStore>,
    pub users: Arc<dyn UserStore>,
    pub issuer: String,
}

impl TokenLookup {
    pub(super) async fn introspect(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
    ) -> Result<Introspection, TokenError> {
        let refresh_first = hint == Some("refresh_token");
        if refresh_first && let Some(found) = self.introspect_refresh(caller, token).await? {
            return Ok(found);
        }
        if let Some(claims) = self.live_access_token(token).await?
            && (claims.client_id == caller.id.as_str()
                || caller.audiences.iter().any(|a| a.as_str() == claims.aud))
        {
            // A client's own token has `sub` = `client_id`; an exchanged one names its actor in
            // `act` and its subject may be a client or a user, so no username is claimed.
            let is_user = claims.sub != claims.client_id && claims.act.is_none();
            return Ok(Introspection::Active {
                scope: claims.scope,
                username: is_user.then(|| claims.sub.clone()),
                client_id: claims.client_id,
                sub: claims.sub,
                aud: claims.aud,
                iss: claims.iss,
                exp: claims.exp,
                iat: claims.iat,
                token_type: if claims.cnf.is_some() {
                    "DPoP"
                } else {
                    "Bearer"
                },
                jti: Some(claims.jti),
                jkt: claims.cnf.map(|cnf| cnf.jkt),
                act: claims.act,
            });
        }
        if !refresh_first && let Some(found) = self.introspect_refresh(caller, token).await? {
            return Ok(found);
        }
        Ok(Introspection::Inactive)
    }

    /// An access token this server issued, still within its lifetime and not revoked.
    pub(super) async fn live_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessTokenClaims>, TokenError> {
        let Some(claims) = self.signer.verify(token) else {
            return Ok(None);
        };
        if claims.iss != self.issuer || claims.exp <= now_secs() {
            return Ok(None);
        }
        if self.tokens.is_access_revoked(&claims.jti).await? {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    async fn introspect_refresh(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Option<Introspection>, TokenError> {
        let Some(record) = self.tokens.find_refresh(&refresh_token_hash(token)).await? else {
            return Ok(None);
        };
        let live = record.client_id == caller.id.as_str()
            && record.used_at.is_none()
            && record.revoked_at.is_none()
            && record.expires_at > now_secs();
        if !live {
            return Ok(Some(Introspection::Inactive));
        }
        let user_active = match Username::parse(&record.username) {
            Ok(name) => self.users.find(&name).await?.is_some_and(|u| u.active),
            Err(_) => false,
        };
        if !user_active {
            return Ok(Some(Introspection::Inactive));
        }
        Ok(Some(Introspection::Active {
            scope: record.scope,
            client_id: record.client_id,
            username: Some(record.username.clone()),
            sub: record.username,
            aud: record.audience,
            iss: self.issuer.clone(),
            exp: record.expires_at,
            iat: record.created_at,
            token_type: "refresh_token",
            jti: None,
            jkt: None,
            act: None,
        }))
    }
}
