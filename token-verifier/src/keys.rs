//! Public keys as other parties publish them (a client's JWKS, a workload issuer's JWKS, the key
//! inside a DPoP proof), and the checks of a compact JWS against them. Unlike an access-token
//! issuer's JWKS, such keys may lack `kid` or `alg`: the JWS header then chooses among the keys
//! that fit its `alg`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::{jwk::Jwk, jws::JwsVerifier};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::algorithm::Algorithm;

/// Members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// RFC 7638 SHA-256 thumbprint (base64url) of a public EC, OKP or RSA key: the `jkt` of DPoP.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    // The required members only, in lexicographic order, without white space (RFC 7638 §3.2).
    let canonical = match member("kty")? {
        "EC" => serde_json::json!({
            "crv": member("crv")?, "kty": "EC", "x": member("x")?, "y": member("y")?
        }),
        "OKP" => serde_json::json!({"crv": member("crv")?, "kty": "OKP", "x": member("x")?}),
        "RSA" => serde_json::json!({"e": member("e")?, "kty": "RSA", "n": member("n")?}),
        _ => return None,
    };
    // serde_json's map keeps keys sorted, as RFC 7638 asks.
    let text = serde_json::to_string(&canonical).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

/// Whether a JWK carries private (or symmetric) key material.
pub fn is_private(jwk: &Map<String, Value>) -> bool {
    PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m))
        || jwk.get("kty").and_then(Value::as_str) == Some("oct")
}

/// One public key, with the verifiers built for it so far (one per algorithm it is used with).
pub struct PublicKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    jwk: Jwk,
    verifiers: Mutex<HashMap<Algorithm, Arc<dyn JwsVerifier>>>,
}

impl PublicKey {
    /// A public key from its JWK; `None` for private or symmetric material, an `alg` not
    /// accepted, or a key that is no usable asymmetric key.
    pub fn from_jwk(map: &Map<String, Value>) -> Option<Self> {
        if is_private(map) {
            return None;
        }
        match map.get("use").and_then(Value::as_str) {
            None | Some("sig") => {}
            Some(_) => return None,
        }
        let alg = match map.get("alg") {
            None => None,
            Some(Value::String(name)) => Some(Algorithm::from_name(name)?),
            Some(_) => return None,
        };
        let jwk = Jwk::from_map(map.clone()).ok()?;
        if !Algorithm::ALL.iter().any(|a| a.fits(&jwk)) {
            return None;
        }
        Some(Self {
            kid: map.get("kid").and_then(Value::as_str).map(str::to_owned),
            alg,
            jwk,
            verifiers: Mutex::default(),
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether the key may verify a JWS signed with `alg` (its own `alg`, if it names one).
    pub fn accepts(&self, alg: Algorithm) -> bool {
        // `EdDSA` and `Ed25519` name the same algorithm for an Ed25519 key (RFC 9864).
        let same = |own: Algorithm| {
            own == alg
                || matches!(
                    (own, alg),
                    (Algorithm::EdDsa, Algorithm::Ed25519) | (Algorithm::Ed25519, Algorithm::EdDsa)
                )
        };
        self.alg.is_none_or(same) && alg.fits(&self.jwk)
    }

    /// The verifier of this key for `alg`, built once.
    fn verifier(&self, alg: Algorithm) -> Option<Arc<dyn JwsVerifier>> {
        let mut verifiers = self.verifiers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(verifier) = verifiers.get(&alg) {
            return Some(Arc::clone(verifier));
        }
        let verifier: Arc<dyn JwsVerifier> = Arc::from(alg.verifier_from_jwk(&self.jwk)?);
        verifiers.insert(alg, Arc::clone(&verifier));
        Some(verifier)
    }
}

/// The usable signing keys of a JWKS document.
#[derive(Default)]
pub struct PublicKeySet {
    keys: Vec<PublicKey>,
}

/// Why a key set was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("the JWKS is not a JSON object with a `keys` array")]
    NotAKeySet,
    #[error("the JWKS holds private key material")]
    PrivateKey,
    #[error("the JWKS has no usable signing key")]
    NoUsableKey,
}

impl PublicKeySet {
    /// Parses a JWKS document. A set with private key material is refused whole (whoever
    /// published it leaked a secret); keys this crate cannot use (other `use`, unknown `alg`,
    /// symmetric, malformed) are skipped.
    pub fn parse(document: &[u8]) -> Result<Self, KeySetError> {
        let document: Value =
            serde_json::from_slice(document).map_err(|_| KeySetError::NotAKeySet)?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(KeySetError::NotAKeySet);
        };
        let mut keys = Vec::new();
        for entry in entries {
            let Value::Object(map) = entry else { continue };
            if is_private(map) && map.get("kty").and_then(Value::as_str) != Some("oct") {
                return Err(KeySetError::PrivateKey);
            }
            if let Some(key) = PublicKey::from_jwk(map) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this `kid` is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// The keys a JWS with this header may be checked with: the one its `kid` names, or, with no
    /// `kid`, every key that fits its `alg`.
    fn candidates<'s>(
        &'s self,
        kid: Option<&'s str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'s PublicKey> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid() == Some(kid)) && k.accepts(alg))
    }
}

/// A compact JWS, split and decoded, not yet verified.
pub struct CompactJws<'t> {
    pub header: Map<String, Value>,
    pub payload: Vec<u8>,
    signing_input: &'t str,
    signature: Vec<u8>,
}

/// Why a compact JWS did not verify. Fixed texts, safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("alg is missing or not accepted")]
    Algorithm,
    #[error("a critical header parameter is not understood")]
    Critical,
    #[error("no key to check it with")]
    NoKey,
    #[error("the signature is invalid")]
    BadSignature,
}

impl<'t> CompactJws<'t> {
    /// Splits and decodes `token` (three base64url parts; header and payload JSON objects).
    pub fn parse(token: &'t str) -> Result<Self, JwsError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwsError::Malformed)
        };
        let header: Map<String, Value> =
            serde_json::from_slice(&decode(header)?).map_err(|_| JwsError::Malformed)?;
        let payload = decode(payload)?;
        Ok(Self {
            header,
            payload,
            signing_input: &token[..token.len() - signature.len() - 1],
            signature: decode(signature)?,
        })
    }

    /// The header's `alg`, if it is one this crate accepts.
    pub fn algorithm(&self) -> Result<Algorithm, JwsError> {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .ok_or(JwsError::Algorithm)
    }

    /// The payload as a JSON object.
    pub fn claims(&self) -> Result<Map<String, Value>, JwsError> {
        serde_json::from_slice(&self.payload).map_err(|_| JwsError::Malformed)
    }

    /// Checks the signature against `set` (the key the `kid` names, or every key that fits
    /// the `alg`), allowing only `allowed` algorithms.
    pub fn verify_with(&self, set: &PublicKeySet, allowed: &[Algorithm]) -> Result<(), JwsError> {
        let alg = self.algorithm()?;
        if !allowed.contains(&alg) {
            return Err(JwsError::Algorithm);
        }
        if self.header.contains_key("crit") {
            return Err(JwsError::Critical);
        }
        let kid = self.header.get("kid").and_then(Value::as_str);
        let mut tried = false;
        for key in set.candidates(kid, alg) {
            tried = true;
            if let Some(verifier) = key.verifier(alg)
                && verifier
                    .verify(self.signing_input.as_bytes(), &self.signature)
                    .is_ok()
            {
                return Ok(());
            }
        }
        Err(if tried {
            JwsError::BadSignature
        } else {
            JwsError::NoKey
        })
    }

    /// Checks the signature against one key.
    pub fn verify_with_key(&self, key: &PublicKey, allowed: &[Algorithm]) -> Result<(), JwsError> {
        let alg = self.algorithm()?;
        if !allowed.contains(&alg) || !key.accepts(alg) {
            return Err(JwsError::Algorithm);
        }
        if self.header.contains_key("crit") {
            return Err(JwsError::Critical);
        }
        let verifier = key.verifier(alg).ok_or(JwsError::NoKey)?;
        verifier
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use josekit::jws::{ES256, EdDSA, JwsHeader};

    use super::*;

    fn public(pair_jwk: &Jwk) -> Map<String, Value> {
        pair_jwk.as_ref().clone()
    }

    #[test]
    fn the_thumbprint_is_rfc7638s() {
        // RFC 7638 §3.1.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_key_set_with_private_material_is_refused_whole() {
        let pair = ES256.generate_key_pair().unwrap();
        let private = Value::Object(public(&pair.to_jwk_private_key()));
        let document = serde_json::json!({ "keys": [private] }).to_string();
        assert_eq!(
            PublicKeySet::parse(document.as_bytes()).err(),
            Some(KeySetError::PrivateKey)
        );
    }

    #[test]
    fn a_jws_without_kid_is_checked_against_every_key_that_fits_its_alg() {
        let es = ES256.generate_key_pair().unwrap();
        let ed = EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let set = serde_json::json!({"keys": [
            Value::Object(public(&ed.to_jwk_public_key())),
            Value::Object(public(&es.to_jwk_public_key())),
        ]})
        .to_string();
        let set = PublicKeySet::parse(set.as_bytes()).unwrap();
        let mut header = JwsHeader::new();
        header.set_algorithm("ES256");
        let signer = ES256.signer_from_jwk(&es.to_jwk_private_key()).unwrap();
        let token = josekit::jws::serialize_compact(b"{}", &header, &signer).unwrap();

        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.verify_with(&set, &[Algorithm::Es256]), Ok(()));
        assert_eq!(
            jws.verify_with(&set, &[Algorithm::Rs256]),
            Err(JwsError::Algorithm),
            "an algorithm not allowed"
        );
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 4.., "AAAA");
        assert_eq!(
            CompactJws::parse(&tampered)
                .unwrap()
                .verify_with(&set, &[Algorithm::Es256]),
            Err(JwsError::BadSignature)
        );
    }

    #[test]
    fn ed25519_is_the_fully_specified_name_of_eddsa_with_ed25519() {
        let ed = EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let key = PublicKey::from_jwk(&public(&ed.to_jwk_public_key())).unwrap();
        let signer = EdDSA.signer_from_jwk(&ed.to_jwk_private_key()).unwrap();
        // Sign the input by hand: josekit would write alg EdDSA.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"Ed25519"}"#);
        let payload = URL_SAFE_NO_PAD.encode(b"{}");
        let input = format!("{header}.{payload}");
        let signature = signer.sign(input.as_bytes()).unwrap();
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));

        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.verify_with_key(&key, &[Algorithm::Ed25519]), Ok(()));
    }
}
