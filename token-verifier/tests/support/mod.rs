//! What the verifier's tests share: the crate's own test issuer (a real HTTP server on
//! port 0 that publishes metadata and a JWKS, counts fetches, rotates and can be told to
//! fail), and ways to make tokens no issuer would sign.

#![allow(dead_code, unused_imports)] // each test binary uses a different part

pub mod fixed_server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::jws::JwsSigner;
use serde_json::Value;
pub use token_verifier::test_issuer::{SigningKey, TestIssuer, TokenBuilder};
use token_verifier::{Algorithm, TokenVerifier, VerifierConfig};

pub const AUDIENCE: &str = "players-api";

/// An issuer of players-api tokens with one key of `alg`, its JWKS cacheable for an hour.
pub async fn issuer_with(alg: Algorithm) -> TestIssuer {
    TestIssuer::builder()
        .algorithm(alg)
        .audience(AUDIENCE)
        .max_age(Duration::from_secs(3600))
        .start()
        .await
}

pub async fn issuer() -> TestIssuer {
    issuer_with(Algorithm::Es256).await
}

/// A valid players-api token of `issuer`, for the client `foobarbaz` with `players:write`.
pub fn valid(issuer: &TestIssuer) -> TokenBuilder<'_> {
    issuer
        .token()
        .subject("foobarbaz")
        .client_id("foobarbaz")
        .scope("players:write")
}

/// The claims of a valid token, as JSON (for tokens made by hand).
pub fn claims(issuer: &TestIssuer) -> Value {
    let token = valid(issuer).mint();
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A verifier of `issuer`'s tokens with the JWKS URL configured, changed by `edit`, with
/// its keys fetched.
pub async fn verifier_with(
    issuer: &TestIssuer,
    edit: impl FnOnce(&mut VerifierConfig),
) -> TokenVerifier {
    let jwks_url = issuer.jwks_url();
    issuer
        .verifier_with(AUDIENCE, |config| {
            config.jwks_url = Some(jwks_url);
            edit(config);
        })
        .await
}

pub async fn verifier(issuer: &TestIssuer) -> TokenVerifier {
    verifier_with(issuer, |_| {}).await
}

/// Builds a compact JWS by hand, for tokens no library would sign.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A compact JWS under exactly `header`, signed by `signer` (HMAC keyed with a public key,
/// another algorithm than the key's, …).
pub fn signed_by(header: &Value, claims: &Value, signer: &dyn JwsSigner) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
