//! A client's DPoP key (RFC 9449): the proofs it sends with a request, and the thumbprint a
//! bound token names in `cnf.jkt`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use super::{SigningKey, token::unix_now};
use crate::{Algorithm, dpop::access_token_hash, keys::thumbprint};

static NEXT_PROOF: AtomicU64 = AtomicU64::new(1);

/// A client's proof-of-possession key pair. [`TokenBuilder::dpop_bound`](super::TokenBuilder)
/// binds a token to it; [`proof`](Self::proof) makes the `DPoP` header for one request.
#[derive(Clone, Debug)]
pub struct DpopKey {
    key: SigningKey,
    jkt: String,
}

impl DpopKey {
    /// A fresh ES256 key (what most clients use).
    pub fn generate() -> Self {
        Self::with_algorithm(Algorithm::Es256)
    }

    /// A fresh key for `alg`.
    pub fn with_algorithm(alg: Algorithm) -> Self {
        let key = SigningKey::generate(alg);
        let jwk = public_members(&key);
        let jkt = thumbprint(&jwk).expect("a generated key has a thumbprint");
        Self { key, jkt }
    }

    /// RFC 7638 thumbprint of the public key: a bound token's `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// The public JWK a proof carries.
    pub fn public_jwk(&self) -> Value {
        Value::Object(public_members(&self.key))
    }

    /// A fresh proof for `method` and `url` (query and fragment are the caller's to leave
    /// out), with `ath` for `access_token` when one is sent.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let serial = NEXT_PROOF.fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        let mut claims = json!({
            "jti": format!("proof-{serial}-{now}"),
            "htm": method,
            "htu": url,
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = access_token_hash(token).into();
        }
        self.proof_with(&claims)
    }

    /// A proof with exactly these claims, under the usual header (`typ: dpop+jwt`, the key's
    /// `alg` and public `jwk`): for proofs no client would send.
    pub fn proof_with(&self, claims: &Value) -> String {
        let mut header = Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("alg".into(), self.key.algorithm().name().into());
        header.insert("jwk".into(), self.public_jwk());
        self.key
            .sign_compact(&header, claims.to_string().as_bytes())
    }
}

/// The key's public JWK without `kid`, `alg` and `use`: what a client puts in a proof.
fn public_members(key: &SigningKey) -> Map<String, Value> {
    let Value::Object(mut jwk) = key.public_jwk() else {
        unreachable!("a JWK is an object")
    };
    for name in ["kid", "alg", "use"] {
        jwk.remove(name);
    }
    jwk
}
