//! The resource owner password credentials grant (RFC 6749 §4.3), for first-party clients that
//! are explicitly allowed it. The user is the subject; the scope is what both the client and the
//! user may have.

use std::sync::Arc;

use uuid::Uuid;

use super::refresh_token::RefreshPolicy;
use super::{
    IssuedToken, Minter, RequestSource, TokenError, TokenParameters, api_takes, granted_scope,
    new_refresh_token,
};
use crate::clock::now_secs;
use crate::crypto::SecretVerifier;
use crate::domain::{Client, GrantType, Username, choose_audience};
use crate::stores::{RefreshTokenRecord, TokenStore, UserStore};
use crate::throttle::{Throttle, ThrottleKey};

/// One answer for an unknown user, a wrong password and a disabled user.
const WRONG_CREDENTIALS: &str = "wrong username or password";

pub(super) struct PasswordGrant {
    pub users: Arc<dyn UserStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub secrets: Arc<SecretVerifier>,
    pub throttle: Arc<Throttle>,
    pub refresh: RefreshPolicy,
}

impl PasswordGrant {
    pub(super) async fn issue(
        &self,
        minter: &Minter,
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
        self.throttle
            .check(&keys)
            .await
            .map_err(|retry_after| TokenError::Throttled { retry_after })?;

        let user = match &name {
            Some(name) => self.users.find(name).await?,
            None => None,
        };
        // Always the full argon2id cost (no cache), against a dummy hash for unknown users, so
        // unknown, wrong and disabled take the same time.
        let verified = self
            .secrets
            .verify_uncached(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await
            .map_err(TokenError::internal)?;
        let user = match user {
            Some(user) if verified && user.active => user,
            _ => {
                self.throttle.record_failure(&keys).await;
                return Err(TokenError::InvalidGrant(WRONG_CREDENTIALS));
            }
        };
        if let Some(key) = keys.iter().find(|k| matches!(k, ThrottleKey::User(..))) {
            self.throttle.record_success(key).await;
        }
        super::rehash::password(&self.users, &user, password);

        let target = choose_audience(client, &params.target).ok_or(TokenError::InvalidTarget)?;
        api_takes(&target, GrantType::Password)?;
        let allowed = target.scopes_within(&client.scopes.intersection(&user.scopes));
        let scope = granted_scope(params.scope.as_deref(), &allowed)?;
        let mut issued = minter.mint(user.username.as_str(), client, &target, scope.clone())?;

        // No refresh token the API would refuse at every refresh.
        if client.may_use(GrantType::RefreshToken) && target.allows(GrantType::RefreshToken) {
            let (token, hash) = new_refresh_token();
            let now = now_secs();
            self.tokens
                .insert_refresh(&RefreshTokenRecord {
                    token_hash: hash,
                    chain_id: Uuid::new_v4().to_string(),
                    client_id: client.id.as_str().to_owned(),
                    username: user.username.as_str().to_owned(),
                    scope: scope.to_string(),
                    audience: target.audience.as_str().to_owned(),
                    created_at: now,
                    expires_at: now + i64::from(self.refresh.ttl_secs),
                    chain_expires_at: now + i64::from(self.refresh.chain_max_secs),
                    used_at: None,
                    revoked_at: None,
                    access_jti: Some(issued.jti.clone()),
                    access_expires_at: Some(issued.expires_at),
                })
                .await?;
            issued.refresh_token = Some(token);
        }
        Ok(issued)
    }
}
