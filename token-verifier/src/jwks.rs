//! Turns a JWKS document into ready-to-use verifiers, one per `kid`, built once per fetch.

use std::{collections::HashMap, sync::Arc, time::Duration};

use josekit::{jwk::Jwk, jws::JwsVerifier};
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;

/// One published key with its verifier already built.
pub(crate) struct VerifyingKey {
    /// The only algorithm this key may verify: the `alg` the JWK names.
    pub alg: Algorithm,
    pub verifier: Box<dyn JwsVerifier>,
}

/// The usable keys of one JWKS document, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
}

impl KeySet {
    pub(crate) fn get(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.get(kid).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// Why a JWKS document was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksError {
    #[error("the JWKS is not a JSON object with a `keys` array")]
    NotAKeySet,
    #[error("the JWKS has no usable signing key")]
    NoUsableKey,
}

/// Parses a JWKS document. Keys this verifier cannot use safely (no `kid`, no or a
/// non-asymmetric `alg`, `use` other than `sig`, malformed) are skipped with a warning.
pub(crate) fn parse_key_set(body: &[u8]) -> Result<KeySet, JwksError> {
    let document: Value = serde_json::from_slice(body).map_err(|_| JwksError::NotAKeySet)?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(JwksError::NotAKeySet);
    };
    let mut keys = HashMap::new();
    for entry in entries {
        let Value::Object(map) = entry else {
            tracing::warn!("skipping a JWKS entry that is not an object");
            continue;
        };
        match usable_key(map) {
            Ok((kid, key)) => {
                if keys.insert(kid.clone(), Arc::new(key)).is_some() {
                    tracing::warn!(%kid, "the JWKS lists this kid twice; using the last one");
                }
            }
            Err(reason) => {
                let kid = map
                    .get("kid")
                    .and_then(|kid| kid.as_str())
                    .unwrap_or("<none>");
                tracing::warn!(kid, reason, "skipping a JWKS key");
            }
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(KeySet { keys })
}

fn usable_key(map: &Map<String, Value>) -> Result<(String, VerifyingKey), &'static str> {
    let kid = match map.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err("no kid"),
    };
    match map.get("use") {
        None => {}
        Some(Value::String(key_use)) if key_use == "sig" => {}
        Some(_) => return Err("use is not sig"),
    }
    let alg = match map.get("alg") {
        Some(Value::String(name)) => Algorithm::from_name(name).ok_or("alg is not accepted")?,
        _ => return Err("no alg"),
    };
    let jwk = Jwk::from_map(map.clone()).map_err(|_| "not a JWK")?;
    let verifier = alg
        .verifier_from_jwk(&jwk)
        .ok_or("the key does not fit its alg")?;
    Ok((kid, VerifyingKey { alg, verifier }))
}

/// The `max-age` of a `Cache-Control` header value; `no-cache`/`no-store` count as zero.
pub(crate) fn max_age(cache_control: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use josekit::jws::{ES256, EdDSA, HS256};
    use serde_json::json;

    use super::*;

    fn es256_public_jwk(kid: &str) -> Value {
        let pair = ES256.generate_key_pair().unwrap();
        let mut jwk = pair.to_jwk_public_key();
        jwk.set_key_id(kid);
        jwk.set_algorithm("ES256");
        jwk.set_key_use("sig");
        Value::Object(jwk.as_ref().clone())
    }

    #[test]
    fn a_published_key_is_found_by_its_kid_with_its_alg() {
        let body = json!({"keys": [es256_public_jwk("k1")]}).to_string();
        let set = parse_key_set(body.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.get("k1").unwrap().alg, Algorithm::Es256);
        assert!(set.get("k2").is_none());
    }

    #[test]
    fn keys_without_kid_or_alg_or_for_encryption_are_skipped() {
        let mut no_kid = es256_public_jwk("x");
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut no_alg = es256_public_jwk("no-alg");
        no_alg.as_object_mut().unwrap().remove("alg");
        let mut enc = es256_public_jwk("enc");
        enc["use"] = json!("enc");
        let good = es256_public_jwk("good");
        let body = json!({"keys": [no_kid, no_alg, enc, good]}).to_string();
        let set = parse_key_set(body.as_bytes()).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["good"]);
    }

    #[test]
    fn a_symmetric_key_is_never_usable() {
        let mut jwk = HS256.to_jwk(b"a shared secret of thirty-two bytes");
        jwk.set_key_id("hmac");
        jwk.set_algorithm("HS256");
        let body = json!({"keys": [Value::Object(jwk.as_ref().clone())]}).to_string();
        assert!(matches!(
            parse_key_set(body.as_bytes()),
            Err(JwksError::NoUsableKey)
        ));
    }

    #[test]
    fn a_key_whose_alg_does_not_fit_its_type_is_skipped() {
        let mut jwk = es256_public_jwk("liar");
        jwk["alg"] = json!("EdDSA");
        let ed = EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let mut ed_jwk = ed.to_jwk_public_key();
        ed_jwk.set_key_id("ed");
        ed_jwk.set_algorithm("EdDSA");
        let body = json!({"keys": [jwk, Value::Object(ed_jwk.as_ref().clone())]}).to_string();
        let set = parse_key_set(body.as_bytes()).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["ed"]);
    }

    #[test]
    fn a_document_without_keys_is_not_a_key_set() {
        for body in ["[]", "{}", "not json", r#"{"keys": {}}"#] {
            assert!(
                matches!(parse_key_set(body.as_bytes()), Err(JwksError::NotAKeySet)),
                "{body}"
            );
        }
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("Max-Age=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
