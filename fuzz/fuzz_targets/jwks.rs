//! The JWKS parser the verifier runs on every fetched key set (`token_verifier::fuzzing`),
//! and the `Cache-Control` reading that sets how long the keys are cached.
//!
//! Beyond "no panic": a parsed key set has at least one key and no empty `kid`; and no key
//! set, whatever it holds, makes an expired token (signed by a key in
//! `seeds/keys.jwks.json`, whose private half was discarded) pass.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use token_verifier::fuzzing::{OfflineKeys, Rules, max_age};

const RULES: Rules<'static> = Rules {
    issuer: "https://issuer.fuzz.invalid",
    audience: "players-api",
    leeway: Duration::from_secs(60),
    now: 1_900_000_000,
};

const EXPIRED_TOKEN: &str = include_str!("../corpus/jws_checks/token-es256");

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = OfflineKeys::parse(data) {
        let kids = keys.kids();
        assert!(!kids.is_empty(), "a key set without keys was accepted");
        assert!(
            kids.iter().all(|kid| !kid.is_empty()),
            "a key with an empty kid"
        );
        assert!(
            keys.verify(EXPIRED_TOKEN, &RULES).is_err(),
            "an expired token passed"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = max_age(text);
    }
});
