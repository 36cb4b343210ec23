//! The verifier's parse and check steps without a network, for the fuzz targets in `fuzz/`
//! (feature `fuzzing`, off by default). Not an API: the same private functions the verifier
//! runs, reached without fetching keys, so that a fuzzer can feed them attacker input.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::{
    algorithm::Algorithm,
    claims::{ClaimRules, VerifiedClaims},
    error::VerifyError,
    header,
    jwks::{self, KeySet},
    verifier::{decode_header, verify_with_key},
};

/// The claim expectations the fuzz targets hold tokens to.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub leeway: Duration,
    /// Seconds since the Unix epoch.
    pub now: i64,
}

impl<'a> Rules<'a> {
    fn claim_rules(&self) -> ClaimRules<'a> {
        ClaimRules {
            issuer: self.issuer,
            audience: self.audience,
            leeway: self.leeway,
            now: self.now,
        }
    }
}

/// A compact JWS's header, decoded and held to the header rules: its algorithm and `kid`.
pub fn check_header(token: &str) -> Result<(Algorithm, String), VerifyError> {
    let checked = header::check(&decode_header(token)?)?;
    Ok((checked.alg, checked.kid))
}

/// A JSON claims set held to the claim rules, as if its signature had checked out.
pub fn check_claims(claims: &[u8], rules: &Rules<'_>) -> Result<VerifiedClaims, VerifyError> {
    let claims: Map<String, Value> =
        serde_json::from_slice(claims).map_err(|_| VerifyError::Malformed)?;
    rules.claim_rules().check(&claims)
}

/// The `max-age` the verifier would take from a JWKS response's `Cache-Control`.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    jwks::max_age(cache_control)
}

/// The usable keys of one JWKS document, as the verifier builds them after a fetch.
pub struct OfflineKeys(KeySet);

impl OfflineKeys {
    /// Parses a JWKS document; the error says why it was not used.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        jwks::parse_key_set(body)
            .map(Self)
            .map_err(|err| err.to_string())
    }

    /// The `kid`s of the usable keys.
    pub fn kids(&self) -> Vec<String> {
        self.0.kids().map(str::to_owned).collect()
    }

    /// [`crate::TokenVerifier::verify`] with these keys: header rules, the key the `kid`
    /// names (unknown: refused, no refetch), its algorithm, the signature, the claim rules.
    pub fn verify(&self, token: &str, rules: &Rules<'_>) -> Result<VerifiedClaims, VerifyError> {
        let (alg, kid) = check_header(token)?;
        let key = self.0.get(&kid).ok_or(VerifyError::UnknownKey)?;
        verify_with_key(token, alg, &key, &rules.claim_rules())
    }
}
