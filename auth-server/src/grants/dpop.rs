//! DPoP at the token endpoint (RFC 9449 §4–§8): the proof's checks, its `jti` never accepted
//! twice on any instance sharing the replay store, and optional server nonces. Nonces are
//! stateless: an HMAC of the current time window under a secret every instance derives from
//! the key-encryption key, so any instance accepts any instance's nonce (the current or the
//! previous window: 2 to 4 minutes of validity).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use token_verifier::dpop::{Expected, ProofChecker, ProofError, normalize_url};

use crate::stores::{ReplayStore, StoreError};

/// Seconds a nonce window lasts.
const NONCE_WINDOW_SECS: i64 = 120;
const LEEWAY_SECS: i64 = 60;

/// Why a proof was not accepted, in the token endpoint's terms.
#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    /// 400 `invalid_dpop_proof`.
    #[error("{0}")]
    Invalid(ProofError),
    /// The client must use DPoP and sent no proof: 400 `invalid_dpop_proof`.
    #[error("this client must send a DPoP proof")]
    Required,
    /// 400 `use_dpop_nonce`, with this nonce in `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseNonce(String),
    #[error(transparent)]
    Store(StoreError),
}

pub struct DpopGate {
    url: String,
    max_age_secs: i64,
    require_nonce: bool,
    nonce_secret: [u8; 32],
    checker: ProofChecker,
    replays: Arc<dyn ReplayStore>,
}

impl DpopGate {
    pub fn new(
        issuer: &str,
        max_age_secs: u32,
        require_nonce: bool,
        nonce_secret: [u8; 32],
        replays: Arc<dyn ReplayStore>,
    ) -> Self {
        let url = format!("{}/auth/token", issuer.trim_end_matches('/'));
        Self {
            url: normalize_url(&url).unwrap_or(url),
            max_age_secs: i64::from(max_age_secs),
            require_nonce,
            nonce_secret,
            checker: ProofChecker::new(),
            replays,
        }
    }

    /// The thumbprint to bind the token to, if a proof was sent: checked for `POST` to the
    /// token endpoint, its nonce (when required), and never seen before.
    pub async fn check(
        &self,
        proof: Option<&str>,
        required: bool,
        now: i64,
    ) -> Result<Option<String>, DpopError> {
        let Some(proof) = proof else {
            return if required {
                Err(DpopError::Required)
            } else {
                Ok(None)
            };
        };
        let checked = self
            .checker
            .check(
                proof,
                &Expected {
                    method: "POST",
                    url: &self.url,
                    access_token: None,
                    now,
                    max_age_secs: self.max_age_secs,
                },
            )
            .map_err(DpopError::Invalid)?;
        if self.require_nonce
            && !checked
                .nonce
                .as_deref()
                .is_some_and(|nonce| self.nonce_is_valid(nonce, now))
        {
            return Err(DpopError::UseNonce(self.nonce(now)));
        }
        let expires_at = checked.iat + self.max_age_secs + LEEWAY_SECS;
        let first = self
            .replays
            .first_use(&checked.replay_key(&self.url), expires_at, now)
            .await
            .map_err(DpopError::Store)?;
        if !first {
            return Err(DpopError::Invalid(ProofError::Replayed));
        }
        Ok(Some(checked.jkt))
    }

    /// A fresh nonce, when nonces are required (sent with every answer so clients keep one).
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.require_nonce.then(|| self.nonce(now))
    }

    fn nonce(&self, now: i64) -> String {
        self.nonce_for_window(now.div_euclid(NONCE_WINDOW_SECS))
    }

    fn nonce_for_window(&self, window: i64) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.nonce_secret).expect("HMAC takes any key");
        mac.update(&window.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn nonce_is_valid(&self, nonce: &str, now: i64) -> bool {
        let current = now.div_euclid(NONCE_WINDOW_SECS);
        [current, current - 1].into_iter().any(|window| {
            let expected = self.nonce_for_window(window);
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), nonce.as_bytes()).into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoReplays;
    #[async_trait::async_trait]
    impl ReplayStore for NoReplays {
        async fn first_use(&self, _: &[u8; 32], _: i64, _: i64) -> Result<bool, StoreError> {
            Ok(true)
        }
    }

    fn gate(secret: u8) -> DpopGate {
        DpopGate::new(
            "https://a.example",
            300,
            true,
            [secret; 32],
            Arc::new(NoReplays),
        )
    }

    #[test]
    fn a_nonce_is_valid_for_its_window_and_the_next_then_never() {
        let gate = gate(1);
        let now = 1_000_000;
        let nonce = gate.nonce(now);
        assert!(gate.nonce_is_valid(&nonce, now));
        assert!(gate.nonce_is_valid(&nonce, now + NONCE_WINDOW_SECS));
        assert!(!gate.nonce_is_valid(&nonce, now + 2 * NONCE_WINDOW_SECS));
        assert!(!gate.nonce_is_valid("made-up", now));
    }

    #[test]
    fn another_secret_makes_other_nonces() {
        let now = 1_000_000;
        assert!(!gate(2).nonce_is_valid(&gate(1).nonce(now), now));
    }
}
