//! The refresh token grant (RFC 6749 §6) with rotation: every use returns a new refresh token
//! and spends the old one. Presenting a spent token again revokes its whole chain (RFC 9700
//! §4.14.2), since either the client or an attacker holds a stolen copy.

use std::sync::Arc;

use super::{
    IssuedToken, Minter, TokenError, TokenParameters, api_takes, granted_scope, new_refresh_token,
    refresh_token_hash,
};
use crate::clock::now_secs;
use crate::domain::{Client, GrantType, ScopeSet, TokenRequestTarget, Username, choose_audience};
use crate::stores::{Exchange, RefreshTokenRecord, TokenStore, UserStore};

/// How long refresh tokens live.
#[derive(Debug, Clone)]
pub(super) struct RefreshPolicy {
    pub ttl_secs: u32,
    pub chain_max_secs: u32,
}

pub(super) struct RefreshGrant {
    pub users: Arc<dyn UserStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub policy: RefreshPolicy,
}

impl RefreshGrant {
    pub(super) async fn issue(
        &self,
        minter: &Minter,
        client: &Client,
        params: &TokenParameters,
    ) -> Result<IssuedToken, TokenError> {
        let Some(presented) = &params.refresh_token else {
            return Err(TokenError::InvalidRequest(
                "parameter refresh_token is missing".into(),
            ));
        };
        let now = now_secs();
        let old_hash = refresh_token_hash(presented);
        let record = self
            .tokens
            .find_refresh(&old_hash)
            .await?
            .filter(|r| r.client_id == client.id.as_str())
            .ok_or(TokenError::InvalidGrant("unknown refresh token"))?;
        if record.revoked_at.is_some() {
            return Err(TokenError::InvalidGrant("the refresh token was revoked"));
        }
        if record.used_at.is_some() {
            let revoked = self.tokens.revoke_chain(&record.chain_id, now).await?;
            tracing::warn!(
                client_id = %client.id,
                username = record.username,
                revoked,
                "refresh token reused: its chain is revoked"
            );
            return Err(TokenError::InvalidGrant(
                "the refresh token was already used",
            ));
        }
        if record.expires_at <= now {
            return Err(TokenError::InvalidGrant("the refresh token has expired"));
        }
        // What was granted may have been taken away since: the chain ends with it.
        // By id only: the stored `aud` is an API id, never a resource URI to resolve.
        let stored = TokenRequestTarget {
            audience: Some(record.audience.clone()),
            resource: None,
        };
        let granted = client
            .audiences
            .iter()
            .any(|a| a.as_str() == record.audience);
        let Some(target) = choose_audience(client, &stored).filter(|_| granted) else {
            self.tokens.revoke_chain(&record.chain_id, now).await?;
            tracing::info!(
                client_id = %client.id,
                audience = record.audience,
                "refresh chain revoked: the client may no longer use its audience"
            );
            return Err(TokenError::InvalidGrant(
                "the client may no longer use this audience",
            ));
        };
        api_takes(&target, GrantType::RefreshToken)?;
        let user = match Username::parse(&record.username) {
            Ok(name) => self.users.find(&name).await?,
            Err(_) => None,
        };
        let Some(user) = user.filter(|u| u.active) else {
            self.tokens.revoke_chain(&record.chain_id, now).await?;
            return Err(TokenError::InvalidGrant("the user is no longer active"));
        };

        // A refresh may narrow the scope, never widen it, and loses what the client or the user
        // may no longer have.
        let original = ScopeSet::parse(&record.scope).map_err(TokenError::internal)?;
        let allowed = target.scopes_within(
            &original
                .intersection(&client.scopes)
                .intersection(&user.scopes),
        );
        let scope = granted_scope(params.scope.as_deref(), &allowed)?;
        // A refresh stays with its API: naming it (by id or resource URI) is allowed, naming
        // another is not.
        let asked = &params.target;
        if (asked.resource.is_some() || asked.audience.is_some())
            && choose_audience(client, asked).map(|t| t.audience) != Some(target.audience.clone())
        {
            return Err(TokenError::InvalidTarget);
        }

        let mut issued = minter.mint(user.username.as_str(), client, &target, scope.clone())?;
        let (token, new_hash) = new_refresh_token();
        let next = RefreshTokenRecord {
            token_hash: new_hash,
            chain_id: record.chain_id.clone(),
            client_id: record.client_id.clone(),
            username: record.username.clone(),
            // RFC 6749 §6: the new refresh token has the scope of the old one, whatever
            // narrower scope this access token was asked for.
            scope: record.scope.clone(),
            audience: record.audience.clone(),
            created_at: now,
            expires_at: (now + i64::from(self.policy.ttl_secs)).min(record.chain_expires_at),
            chain_expires_at: record.chain_expires_at,
            used_at: None,
            revoked_at: None,
            access_jti: Some(issued.jti.clone()),
            access_expires_at: Some(issued.expires_at),
        };
        match self.tokens.exchange_refresh(&old_hash, &next, now).await? {
            Exchange::Rotated => {}
            Exchange::Reused => {
                return Err(TokenError::InvalidGrant(
                    "the refresh token was already used",
                ));
            }
        }
        issued.refresh_token = Some(token);
        Ok(issued)
    }

    /// A client that may no longer use the refresh grant presented `params`' refresh token:
    /// that token's chain ends (if it is the client's), so giving the grant back later does not
    /// revive it.
    pub(super) async fn revoke_unauthorized(
        &self,
        client: &Client,
        params: &TokenParameters,
    ) -> Result<(), TokenError> {
        let Some(presented) = &params.refresh_token else {
            return Ok(());
        };
        let found = self
            .tokens
            .find_refresh(&refresh_token_hash(presented))
            .await?
            .filter(|r| r.client_id == client.id.as_str() && r.revoked_at.is_none());
        if let Some(record) = found {
            self.tokens
                .revoke_chain(&record.chain_id, now_secs())
                .await?;
            tracing::info!(
                client_id = %client.id,
                "refresh chain revoked: the client may no longer use the refresh grant"
            );
        }
        Ok(())
    }
}
