//! The refresh token grant (RFC 6749 §6) with rotation: every use returns a new refresh token
//! and spends the old one. Presenting a spent token again revokes its whole chain (RFC 9700
//! §4.14.2), since either the client or an attacker holds a stolen copy.

use super::{
    IssuedToken, TokenError, TokenParameters, TokenService, granted_scope, new_refresh_token,
    refresh_token_hash,
};
use crate::domain::{Audience, Client, ScopeSet, Username};
use crate::keys::now_secs;
use crate::storage::{Exchange, RefreshTokenRecord};

pub(super) async fn issue(
    service: &TokenService,
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
    let record = service
        .tokens
        .find_refresh(&old_hash)
        .await
        .map_err(TokenError::internal)?
        .filter(|r| r.client_id == client.id.as_str())
        .ok_or(TokenError::InvalidGrant("unknown refresh token"))?;
    if record.revoked_at.is_some() {
        return Err(TokenError::InvalidGrant("the refresh token was revoked"));
    }
    if record.used_at.is_some() {
        let revoked = service
            .tokens
            .revoke_chain(&record.chain_id, now)
            .await
            .map_err(TokenError::internal)?;
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
    let user = match Username::parse(&record.username) {
        Ok(name) => service
            .users
            .find(&name)
            .await
            .map_err(TokenError::internal)?,
        Err(_) => None,
    };
    let Some(user) = user.filter(|u| u.active) else {
        service
            .tokens
            .revoke_chain(&record.chain_id, now)
            .await
            .map_err(TokenError::internal)?;
        return Err(TokenError::InvalidGrant("the user is no longer active"));
    };

    // A refresh may narrow the scope, never widen it, and loses what the client or the user
    // may no longer have.
    let original = ScopeSet::parse(&record.scope).map_err(TokenError::internal)?;
    let allowed = original
        .intersection(&client.scopes)
        .intersection(&user.scopes);
    let scope = granted_scope(params.scope.as_deref(), &allowed)?;
    let requested = params
        .target
        .resource
        .as_ref()
        .or(params.target.audience.as_ref());
    if requested.is_some_and(|r| *r != record.audience) {
        return Err(TokenError::InvalidTarget);
    }
    let audience = Audience::parse(&record.audience).map_err(TokenError::internal)?;

    let (token, new_hash) = new_refresh_token();
    let next = RefreshTokenRecord {
        token_hash: new_hash,
        chain_id: record.chain_id.clone(),
        client_id: record.client_id.clone(),
        username: record.username.clone(),
        scope: scope.to_string(),
        audience: record.audience.clone(),
        created_at: now,
        expires_at: (now + i64::from(service.refresh_ttl_secs)).min(record.chain_expires_at),
        chain_expires_at: record.chain_expires_at,
        used_at: None,
        revoked_at: None,
    };
    match service
        .tokens
        .exchange_refresh(&old_hash, &next, now)
        .await
        .map_err(TokenError::internal)?
    {
        Exchange::Rotated => {}
        Exchange::Reused => {
            return Err(TokenError::InvalidGrant(
                "the refresh token was already used",
            ));
        }
    }
    let mut issued = service.sign(user.username.as_str(), client, &audience, scope)?;
    issued.refresh_token = Some(token);
    Ok(issued)
}
