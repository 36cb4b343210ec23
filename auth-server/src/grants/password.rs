//! The resource owner password credentials grant (RFC 6749 §4.3), for first-party clients that
//! are explicitly allowed it. The user is the subject; the scope is what both the client and the
//! user may have.

use uuid::Uuid;

use super::{
    IssuedToken, RequestSource, TokenError, TokenParameters, TokenService, granted_scope,
    new_refresh_token,
};
use crate::domain::{Client, GrantType, Username, choose_audience};
use crate::keys::now_secs;
use crate::storage::RefreshTokenRecord;
use crate::throttle::ThrottleKey;

/// One answer for an unknown user, a wrong password and a disabled user.
const WRONG_CREDENTIALS: &str = "wrong username or password";

pub(super) async fn issue(
    service: &TokenService,
    client: &Client,
    params: &TokenParameters,
    source: RequestSource,
) -> Result<IssuedToken, TokenError> {
    let (Some(username), Some(password)) = (&params.username, &params.password) else {
        return Err(TokenError::InvalidRequest(
            "the password grant needs username and password".into(),
        ));
    };
    let name = Username::parse(username).ok();
    let keys = source.keys(
        name.as_ref()
            .map(|n| ThrottleKey::User(n.as_str().to_owned(), source.bucket())),
    );
    service
        .throttle
        .check(&keys)
        .map_err(|retry_after| TokenError::Throttled { retry_after })?;

    let user = match &name {
        Some(name) => service
            .users
            .find(name)
            .await
            .map_err(TokenError::internal)?,
        None => None,
    };
    // Always the full argon2id cost (no cache), against a dummy hash for unknown users, so
    // unknown, wrong and disabled take the same time.
    let verified = service
        .secrets
        .verify_uncached(user.as_ref().map(|u| u.password_hash.as_str()), password)
        .await
        .map_err(TokenError::internal)?;
    let user = match user {
        Some(user) if verified && user.active => user,
        _ => {
            service.throttle.record_failure(&keys);
            return Err(TokenError::InvalidGrant(WRONG_CREDENTIALS));
        }
    };
    if let Some(key) = keys.iter().find(|k| matches!(k, ThrottleKey::User(..))) {
        service.throttle.record_success(key);
    }

    let allowed = client.scopes.intersection(&user.scopes);
    let scope = granted_scope(params.scope.as_deref(), &allowed)?;
    let audience = choose_audience(client, &params.target).ok_or(TokenError::InvalidTarget)?;
    let mut issued = service.sign(user.username.as_str(), client, &audience, scope.clone())?;

    if client.may_use(GrantType::RefreshToken) {
        let (token, hash) = new_refresh_token();
        let now = now_secs();
        service
            .tokens
            .insert_refresh(&RefreshTokenRecord {
                token_hash: hash,
                chain_id: Uuid::new_v4().to_string(),
                client_id: client.id.as_str().to_owned(),
                username: user.username.as_str().to_owned(),
                scope: scope.to_string(),
                audience: audience.as_str().to_owned(),
                created_at: now,
                expires_at: now + i64::from(service.refresh_ttl_secs),
                chain_expires_at: now + i64::from(service.refresh_chain_max_secs),
                used_at: None,
                revoked_at: None,
            })
            .await
            .map_err(TokenError::internal)?;
        issued.refresh_token = Some(token);
    }
    Ok(issued)
}
