//! DPoP proofs (RFC 9449): the checks an authorization server and a resource server both make of
//! the `DPoP` header, and the bookkeeping they need (the key's thumbprint, the access-token hash,
//! a replay cache).
//!
//! A proof is a JWS with header `typ: dpop+jwt`, an asymmetric `alg` and the client's public key
//! in `jwk`, signed with that key, whose claims name the request it was made for: `htm` (the
//! method), `htu` (the URL, without query and fragment), `iat`, a unique `jti`, and at a
//! resource server `ath` (the SHA-256 of the access token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::algorithm::Algorithm;
use crate::keys::{CompactJws, PublicKey, is_private, thumbprint};

/// The algorithms a proof may be signed with (what `dpop_signing_alg_values_supported` lists).
pub const PROOF_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::Ed25519,
    Algorithm::EdDsa,
    Algorithm::Ps256,
    Algorithm::Rs256,
];

/// The `algs` of a DPoP challenge and of metadata, space-separated.
pub fn algorithm_names() -> String {
    PROOF_ALGORITHMS
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Largest proof read, in bytes.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_CHARS: usize = 256;
/// How far in the future an `iat` may be (clocks differ).
const FUTURE_LEEWAY_SECS: i64 = 60;

/// What a proof must be made for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The public URL the request was sent to, normalized by [`normalize_url`].
    pub url: &'a str,
    /// The access token sent with the proof (resource servers); `None` at a token endpoint.
    pub access_token: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// How old an `iat` may be, in seconds.
    pub max_age_secs: i64,
}

/// A proof that passed every check but replay and nonce, which are the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof's key: what a bound token's `cnf.jkt` must be.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// The `nonce` claim, if the proof carries one.
    pub nonce: Option<String>,
}

impl Proof {
    /// The key under which a replay cache remembers this proof: its `jti` for its URL.
    pub fn replay_key(&self, url: &str) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(url.as_bytes());
        digest.update([0]);
        digest.update(self.jti.as_bytes());
        digest.finalize().into()
    }
}

/// Why a proof was refused. The texts are fixed and safe to send (`error_description`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("the DPoP proof is malformed")]
    Malformed,
    #[error("the DPoP proof must have typ dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's alg is not accepted")]
    Algorithm,
    #[error("the DPoP proof must carry a public jwk that fits its alg")]
    Key,
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    #[error("the DPoP proof lacks a required claim")]
    MissingClaim,
    #[error("the DPoP proof is for another method")]
    Method,
    #[error("the DPoP proof is for another URL")]
    Url,
    #[error("the DPoP proof is too old or from the future")]
    Time,
    #[error("the DPoP proof is for another access token")]
    AccessTokenHash,
    #[error("the DPoP proof was already used")]
    Replayed,
    #[error("the DPoP proof is signed by another key than the token is bound to")]
    KeyMismatch,
    #[error("a DPoP proof is required with a DPoP-bound token")]
    Missing,
}

/// The SHA-256 of an access token, base64url: a proof's `ath`.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// `url` without query and fragment, as WHATWG parsing writes it (scheme and host lower-cased,
/// default port dropped, dot segments resolved): the form `htu` is compared in.
pub fn normalize_url(url: &str) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// Checks proofs, remembering the keys it has seen (a client keeps its DPoP key, and building a
/// verifier for a key costs more than using one).
#[derive(Default)]
pub struct ProofChecker {
    keys: Mutex<HashMap<String, Arc<PublicKey>>>,
}

/// Keys remembered before the memory is cleared.
const MAX_REMEMBERED_KEYS: usize = 10_000;

impl ProofChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every check of RFC 9449 §4.3 but the nonce and replay: the caller checks the nonce it
    /// issued (if any) against [`Proof::nonce`] and records [`Proof::replay_key`].
    pub fn check(&self, proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
        if proof.len() > MAX_PROOF_BYTES {
            return Err(ProofError::Malformed);
        }
        let jws = CompactJws::parse(proof).map_err(|_| ProofError::Malformed)?;
        match jws.header.get("typ").and_then(Value::as_str) {
            Some(typ) if typ.eq_ignore_ascii_case("dpop+jwt") => {}
            _ => return Err(ProofError::WrongType),
        }
        let alg = jws.algorithm().map_err(|_| ProofError::Algorithm)?;
        if !PROOF_ALGORITHMS.contains(&alg) {
            return Err(ProofError::Algorithm);
        }
        let Some(Value::Object(jwk)) = jws.header.get("jwk") else {
            return Err(ProofError::Key);
        };
        if is_private(jwk) {
            return Err(ProofError::Key);
        }
        let jkt = thumbprint(jwk).ok_or(ProofError::Key)?;
        let key = self.key(&jkt, jwk).ok_or(ProofError::Key)?;
        jws.verify_with_key(&key, &PROOF_ALGORITHMS)
            .map_err(|err| match err {
                crate::keys::JwsError::Algorithm => ProofError::Key,
                _ => ProofError::Signature,
            })?;

        let claims = jws.claims().map_err(|_| ProofError::Malformed)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let jti = text("jti").ok_or(ProofError::MissingClaim)?;
        if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
            return Err(ProofError::Malformed);
        }
        if text("htm").ok_or(ProofError::MissingClaim)? != expected.method {
            return Err(ProofError::Method);
        }
        let htu = text("htu").ok_or(ProofError::MissingClaim)?;
        if normalize_url(htu).as_deref() != Some(expected.url) {
            return Err(ProofError::Url);
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(ProofError::MissingClaim)?;
        if iat > expected.now + FUTURE_LEEWAY_SECS || iat < expected.now - expected.max_age_secs {
            return Err(ProofError::Time);
        }
        if let Some(token) = expected.access_token {
            let ath = text("ath").ok_or(ProofError::MissingClaim)?;
            if ath != access_token_hash(token) {
                return Err(ProofError::AccessTokenHash);
            }
        }
        Ok(Proof {
            jkt,
            jti: jti.to_owned(),
            iat,
            nonce: text("nonce").map(str::to_owned),
        })
    }

    fn key(&self, jkt: &str, jwk: &Map<String, Value>) -> Option<Arc<PublicKey>> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = keys.get(jkt) {
            return Some(Arc::clone(key));
        }
        let key = Arc::new(PublicKey::from_jwk(jwk)?);
        if keys.len() >= MAX_REMEMBERED_KEYS {
            keys.clear();
        }
        keys.insert(jkt.to_owned(), Arc::clone(&key));
        Some(key)
    }
}

/// Remembers proofs (by [`Proof::replay_key`]) until they could no longer be accepted, so that
/// none is used twice by this process. For several processes, share a store instead (the
/// auth-server keeps its token endpoint's in the database).
#[derive(Default)]
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

/// Entries kept before expired ones are swept.
const REPLAY_SWEEP_AT: usize = 100_000;

impl MemoryReplayCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// True the first time `key` is seen before `expires_at` (seconds since the epoch); false
    /// for a replay.
    pub fn first_use(&self, key: [u8; 32], expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= REPLAY_SWEEP_AT {
            seen.retain(|_, until| *until > now);
        }
        match seen.get(&key) {
            Some(until) if *until > now => false,
            _ => {
                seen.insert(key, expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use josekit::jws::{ES256, JwsHeader};

    use super::*;

    struct Client {
        signer: Box<dyn josekit::jws::JwsSigner>,
        public: Map<String, Value>,
    }

    fn client() -> Client {
        let pair = ES256.generate_key_pair().unwrap();
        Client {
            signer: Box::new(ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap()),
            public: pair.to_jwk_public_key().as_ref().clone(),
        }
    }

    fn proof(client: &Client, claims: Value, tweak: impl FnOnce(&mut JwsHeader)) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        header
            .set_claim("jwk", Some(Value::Object(client.public.clone())))
            .unwrap();
        tweak(&mut header);
        josekit::jws::serialize_compact(
            claims.to_string().as_bytes(),
            &header,
            client.signer.as_ref(),
        )
        .unwrap()
    }

    const URL: &str = "https://api.example/players";

    fn expected<'a>(token: Option<&'a str>) -> Expected<'a> {
        Expected {
            method: "POST",
            url: URL,
            access_token: token,
            now: 1_000_000,
            max_age_secs: 300,
        }
    }

    fn claims() -> Value {
        serde_json::json!({"jti": "j-1", "htm": "POST", "htu": URL, "iat": 1_000_000})
    }

    #[test]
    fn a_proof_for_this_request_passes_and_names_its_keys_thumbprint() {
        let client = client();
        let checked = ProofChecker::new()
            .check(&proof(&client, claims(), |_| {}), &expected(None))
            .unwrap();
        assert_eq!(checked.jkt, thumbprint(&client.public).unwrap());
        assert_eq!(checked.jti, "j-1");
    }

    #[test]
    fn a_proof_for_another_method_url_time_or_token_is_refused() {
        let client = client();
        let checker = ProofChecker::new();
        let with = |change: &dyn Fn(&mut Value)| {
            let mut c = claims();
            change(&mut c);
            checker.check(&proof(&client, c, |_| {}), &expected(None))
        };
        assert_eq!(with(&|c| c["htm"] = "GET".into()), Err(ProofError::Method));
        assert_eq!(
            with(&|c| c["htu"] = "https://api.example/other".into()),
            Err(ProofError::Url)
        );
        assert!(
            with(&|c| c["htu"] = "https://API.example:443/players?x=1#f".into()).is_ok(),
            "normalised: host case, default port, query and fragment"
        );
        assert_eq!(with(&|c| c["iat"] = 999_000.into()), Err(ProofError::Time));
        assert_eq!(
            with(&|c| c["iat"] = 1_000_500.into()),
            Err(ProofError::Time)
        );
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Err(ProofError::MissingClaim)
        );
        let token_proof = proof(&client, claims(), |_| {});
        assert_eq!(
            checker.check(&token_proof, &expected(Some("the-token"))),
            Err(ProofError::MissingClaim),
            "no ath"
        );
        let mut c = claims();
        c["ath"] = access_token_hash("another-token").into();
        assert_eq!(
            checker.check(&proof(&client, c, |_| {}), &expected(Some("the-token"))),
            Err(ProofError::AccessTokenHash)
        );
    }

    #[test]
    fn a_proof_with_another_type_no_key_or_a_private_key_is_refused() {
        let client = client();
        let checker = ProofChecker::new();
        let wrong_type = proof(&client, claims(), |h| h.set_token_type("JWT"));
        assert_eq!(
            checker.check(&wrong_type, &expected(None)),
            Err(ProofError::WrongType)
        );
        let no_key = proof(&client, claims(), |h| {
            h.set_claim("jwk", None).unwrap();
        });
        assert_eq!(
            checker.check(&no_key, &expected(None)),
            Err(ProofError::Key)
        );
        let pair = ES256.generate_key_pair().unwrap();
        let private = Value::Object(pair.to_jwk_private_key().as_ref().clone());
        let leaked = proof(&client, claims(), |h| {
            h.set_claim("jwk", Some(private)).unwrap();
        });
        assert_eq!(
            checker.check(&leaked, &expected(None)),
            Err(ProofError::Key)
        );
        let other = client_key_swap(&client);
        assert_eq!(
            checker.check(&other, &expected(None)),
            Err(ProofError::Signature)
        );
    }

    /// A proof signed by one key that names another.
    fn client_key_swap(client: &Client) -> String {
        let other = self::client();
        proof(client, claims(), |h| {
            h.set_claim("jwk", Some(Value::Object(other.public.clone())))
                .unwrap();
        })
    }

    #[test]
    fn the_replay_cache_accepts_a_proof_once_until_it_expires() {
        let cache = MemoryReplayCache::new();
        let key = [7u8; 32];
        assert!(cache.first_use(key, 100, 10));
        assert!(!cache.first_use(key, 100, 50));
        assert!(
            cache.first_use(key, 200, 150),
            "expired entries do not count"
        );
    }
}
