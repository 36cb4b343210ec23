//! The verifier's checks on a compact JWS, without a network
//! (`token_verifier::fuzzing`): the header rules, then key lookup, algorithm, signature and
//! claim rules against the fixed public keys in `seeds/keys.jwks.json`; and the claim rules
//! on the same input read as a bare JSON claims set (as if its signature had checked out).
//!
//! Beyond "no panic": no input is ever accepted as a token. The seeds are validly signed but
//! expired at the fixed clock below, and the private keys were discarded, so an accepted
//! token is a forgery or a broken claim check.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use token_verifier::fuzzing::{OfflineKeys, Rules, check_claims, check_header};

const RULES: Rules<'static> = Rules {
    issuer: "https://issuer.fuzz.invalid",
    audience: "players-api",
    leeway: Duration::from_secs(60),
    now: 1_900_000_000,
};

fn keys() -> &'static OfflineKeys {
    static KEYS: OnceLock<OfflineKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        OfflineKeys::parse(include_bytes!("../seeds/keys.jwks.json")).expect("the fixed JWKS")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = check_claims(data, &RULES) {
        assert!(
            claims.expires_at.saturating_add(60) > RULES.now,
            "expired claims passed"
        );
    }
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((_, kid)) = check_header(token) {
        assert!(!kid.is_empty(), "an empty kid passed the header rules");
    }
    if let Ok(claims) = keys().verify(token, &RULES) {
        panic!("a token was accepted without the private key: {claims:?}");
    }
});
