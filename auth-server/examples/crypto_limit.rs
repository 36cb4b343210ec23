//! The physical limit of the token service: how many access tokens one core can sign, and how
//! many a resource server can verify, in-process, with no HTTP, no database and no scheduler.
//!
//! Signing goes through the server's own types (`KeyMaterial::generate` → sealed key →
//! `UnsealedKey::open(..).sign(&claims)`), so it includes what the server pays per token:
//! the header, the claims' JSON and the signature. Verification uses a josekit verifier built
//! once from the public JWK (as a resource server keeps one per `kid`), on a real token; a
//! forged token (a genuine signature of the same key over another token) is verified too, since
//! that is what a resource server pays for a forged signature. One argon2id verification with the
//! crate defaults shows what a client-secret check costs without the verified-secret cache.
//!
//! Run: `cargo run --release -p auth-server --example crypto_limit`
//! (`CRYPTO_LIMIT_SECS` sets the seconds per measurement, default 2).
//!
//! Output: one line per measurement, `limit op=… alg=… per_sec=… ns_per_op=… iterations=…`
//! (for `bench/run.sh`), preceded by `#` comment lines.

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordVerifier};
use auth_server::crypto::{self, KeyEncryptionKey, KeyMaterial, SigningAlgorithm, UnsealedKey};
use auth_server::domain::AccessTokenClaims;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsVerifier};

/// One measurement: runs `op` on this thread for `duration` (after a short warm-up) and returns
/// the iterations and the time they took.
fn measure(duration: Duration, mut op: impl FnMut()) -> (u64, Duration) {
    let warm_up = Instant::now();
    while warm_up.elapsed() < duration / 10 {
        op();
    }
    let started = Instant::now();
    let mut iterations = 0u64;
    loop {
        // Check the clock only every few iterations so reading it costs nothing measurable;
        // slow operations (argon2id) check it every time.
        for _ in 0..8 {
            op();
        }
        iterations += 8;
        let elapsed = started.elapsed();
        if elapsed >= duration {
            return (iterations, elapsed);
        }
    }
}

fn report(op: &str, alg: &str, (iterations, elapsed): (u64, Duration)) {
    let secs = elapsed.as_secs_f64();
    let per_sec = iterations as f64 / secs;
    let ns_per_op = secs * 1e9 / iterations as f64;
    println!(
        "limit op={op} alg={alg} per_sec={per_sec:.0} ns_per_op={ns_per_op:.0} iterations={iterations}"
    );
}

fn claims(issuer: &str) -> AccessTokenClaims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: "bench-client".to_owned(),
        aud: "players-api".to_owned(),
        client_id: "bench-client".to_owned(),
        scope: "players:write".to_owned(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        jti: uuid::Uuid::new_v4().to_string(),
        cnf: None,
        act: None,
        extra: Default::default(),
    }
}

fn verifier_for(alg: SigningAlgorithm, public_jwk: &str) -> Box<dyn JwsVerifier> {
    let jwk = Jwk::from_bytes(public_jwk.as_bytes()).expect("the generated public JWK parses");
    match alg {
        SigningAlgorithm::ES256 => Box::new(ES256.verifier_from_jwk(&jwk).expect("ES256 verifier")),
        SigningAlgorithm::EdDSA => Box::new(EdDSA.verifier_from_jwk(&jwk).expect("EdDSA verifier")),
        other => panic!("not measured here: {other}"),
    }
}

/// `header.payload` of `token` with the signature of `other`: well-formed, signed by the right
/// key, and still invalid.
fn forge(token: &str, other: &str) -> String {
    let signing_input = &token[..token.rfind('.').expect("compact JWS")];
    let signature = &other[other.rfind('.').expect("compact JWS") + 1..];
    format!("{signing_input}.{signature}")
}

fn main() {
    let secs: f64 = std::env::var("CRYPTO_LIMIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(2.0);
    let duration = Duration::from_secs_f64(secs);
    println!("# crypto_limit: one thread, in-process, {secs} s per measurement");
    if cfg!(debug_assertions) {
        println!("# WARNING: debug build; run with --release for meaningful figures");
    }

    let kek = KeyEncryptionKey::generate();
    let issuer = "http://127.0.0.1:9000";
    for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
        let material = KeyMaterial::generate(alg, &kek).expect("key generation");
        let key = UnsealedKey::open(&material.kid, alg, &material.sealed_private_key, &kek)
            .expect("the sealed key opens");

        // Fresh claims per token as the server makes them (its jti is a new UUID each time).
        let token_claims = claims(issuer);
        report(
            "sign",
            alg.as_str(),
            measure(duration, || {
                black_box(key.sign(black_box(&token_claims)).expect("sign"));
            }),
        );

        let verifier = verifier_for(alg, &material.public_jwk);
        let token = key.sign(&claims(issuer)).expect("sign");
        let forged = forge(&token, &key.sign(&claims(issuer)).expect("sign"));
        assert!(josekit::jws::deserialize_compact(&token, verifier.as_ref()).is_ok());
        assert!(josekit::jws::deserialize_compact(&forged, verifier.as_ref()).is_err());
        report(
            "verify",
            alg.as_str(),
            measure(duration, || {
                black_box(
                    josekit::jws::deserialize_compact(black_box(&token), verifier.as_ref())
                        .expect("verify"),
                );
            }),
        );
        report(
            "verify_forged",
            alg.as_str(),
            measure(duration, || {
                let rejected =
                    josekit::jws::deserialize_compact(black_box(&forged), verifier.as_ref());
                black_box(rejected.is_err());
            }),
        );
    }

    // What one client-secret check costs when the verified-secret cache is off.
    let secret = crypto::generate_secret();
    let hash = crypto::hash_secret(&secret).expect("argon2id hash");
    report(
        "argon2id_verify",
        "argon2id-default",
        measure(duration, || {
            let ok = Argon2::default()
                .verify_password(black_box(secret.as_bytes()), hash.as_str())
                .is_ok();
            assert!(ok);
        }),
    );
}
