//! Minting access tokens: the claims of RFC 9068, signed the one way tokens are signed.

use std::sync::Arc;

use super::{IssuedToken, TokenError};
use crate::clock::now_secs;
use crate::crypto::TokenSigner;
use crate::domain::{AccessTokenClaims, Audience, Client, Confirmation, ScopeSet};

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

    /// An access token for `subject`, issued to `client`, for `audience`, granting `scope`.
    pub fn mint(
        &self,
        subject: &str,
        client: &Client,
        audience: &Audience,
        scope: ScopeSet,
    ) -> Result<IssuedToken, TokenError> {
        let now = now_secs();
        let mut buffer = uuid::Uuid::encode_buffer();
        let jti = uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut buffer)
            .to_owned();
        let mut claims = AccessTokenClaims::new(
            &self.issuer,
            subject,
            audience,
            &client.id,
            &scope,
            now,
            i64::from(self.ttl_secs),
            jti.clone(),
        );
        claims.cnf = self.binding.clone().map(|jkt| Confirmation { jkt });
        let access_token = self.signer.sign(&claims).map_err(TokenError::internal)?;
        Ok(IssuedToken {
            access_token,
            jti,
            expires_in: self.ttl_secs,
            expires_at: claims.exp,
            scope,
            refresh_token: None,
            dpop_bound: self.binding.is_some(),
        })
    }
}
