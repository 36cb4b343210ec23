//! Minting access tokens: the claims of RFC 9068, signed the one way tokens are signed.

use std::sync::Arc;

use super::{IssuedToken, TokenError};
use crate::clock::now_secs;
use crate::crypto::TokenSigner;
use crate::domain::{AccessTokenClaims, Actor, Client, Confirmation, ScopeSet, Target};

/// Signs access tokens for this issuer with this lifetime.
#[derive(Clone)]
pub struct Minter {
    signer: Arc<dyn TokenSigner>,
    issuer: String,
    ttl_secs: u32,
    /// The DPoP key thumbprint the tokens are bound to (`cnf.jkt`).
    binding: Option<String>,
}

impl Minter {
    pub fn new(signer: Arc<dyn TokenSigner>, issuer: String, ttl_secs: u32) -> Self {
        Self {
            signer,
            issuer,
            ttl_secs,
            binding: None,
        }
    }

    /// The same minter, binding its tokens to the DPoP key `jkt` (RFC 9449 §6).
    pub fn bound_to(&self, jkt: String) -> Self {
        Self {
            binding: Some(jkt),
            ..self.clone()
        }
    }

    /// An access token for `subject`, issued to `client`, for the API `target`, granting
    /// `scope`.
    pub fn mint(
        &self,
        subject: &str,
        client: &Client,
        target: &Target,
        scope: ScopeSet,
    ) -> Result<IssuedToken, TokenError> {
        self.mint_with(subject, client, target, scope, i64::MAX, None)
    }

    /// A token exchange's token (RFC 8693): for `subject`, issued to the acting `client`,
    /// naming it in `act`, and living no later than `not_after` (the subject token's `exp`).
    pub fn mint_for_subject(
        &self,
        subject: &str,
        client: &Client,
        target: &Target,
        scope: ScopeSet,
        not_after: i64,
        act: Actor,
    ) -> Result<IssuedToken, TokenError> {
        let mut issued = self.mint_with(subject, client, target, scope, not_after, Some(act))?;
        issued.issued_token_type = Some(super::token_exchange::ACCESS_TOKEN_TYPE);
        Ok(issued)
    }

    fn mint_with(
        &self,
        subject: &str,
        client: &Client,
        target: &Target,
        scope: ScopeSet,
        not_after: i64,
        act: Option<Actor>,
    ) -> Result<IssuedToken, TokenError> {
        let now = now_secs();
        // The shortest of the server's lifetime, the client's own, the API's own and, for an
        // exchange, what is left of the subject token's.
        let ttl_secs = i64::from(self.ttl_secs)
            .min(client.token_ttl_secs.map_or(i64::MAX, i64::from))
            .min(target.token_ttl_secs().map_or(i64::MAX, i64::from))
            .min(not_after.saturating_sub(now));
        if ttl_secs <= 0 {
            // Only an exchange passes a `not_after`: its subject token expired meanwhile.
            return Err(TokenError::InvalidRequest(
                "subject_token has expired".into(),
            ));
        }
        let mut buffer = uuid::Uuid::encode_buffer();
        let jti = uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut buffer)
            .to_owned();
        let mut claims = AccessTokenClaims::new(
            &self.issuer,
            subject,
            &target.audience,
            &client.id,
            &scope,
            now,
            ttl_secs,
            jti.clone(),
        );
        claims.cnf = self.binding.clone().map(|jkt| Confirmation { jkt });
        claims.act = act;
        claims.extra = client.claims.as_map().clone();
        let access_token = self.signer.sign(&claims).map_err(TokenError::internal)?;
        Ok(IssuedToken {
            access_token,
            jti,
            expires_in: u32::try_from(ttl_secs).unwrap_or(self.ttl_secs),
            expires_at: claims.exp,
            scope,
            refresh_token: None,
            dpop_bound: self.binding.is_some(),
            issued_token_type: None,
        })
    }
}
