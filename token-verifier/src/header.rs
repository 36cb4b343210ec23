//! Rules on the JOSE header, checked before any key is looked up: the header is attacker
//! input, so it may only choose among what we already trust, never point us elsewhere.

use serde_json::{Map, Value};

use crate::{algorithm::Algorithm, error::VerifyError};

/// Header parameters that would let a token bring or point at its own key, or demand
/// extensions we do not implement.
const FORBIDDEN_PARAMETERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// The parts of a header that passed the rules.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CheckedHeader {
    pub alg: Algorithm,
    pub kid: String,
}

/// Applies the header rules to a decoded header object.
pub(crate) fn check(header: &Map<String, Value>) -> Result<CheckedHeader, VerifyError> {
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            Algorithm::from_name(name).ok_or(VerifyError::UnsupportedAlgorithm)?
        }
        _ => return Err(VerifyError::UnsupportedAlgorithm),
    };
    if let Some(name) = FORBIDDEN_PARAMETERS
        .into_iter()
        .find(|name| header.contains_key(*name))
    {
        return Err(VerifyError::ForbiddenHeader(name));
    }
    match header.get("typ") {
        Some(Value::String(typ)) if is_access_token_type(typ) => {}
        _ => return Err(VerifyError::WrongType),
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err(VerifyError::MissingKeyId),
    };
    Ok(CheckedHeader { alg, kid })
}

/// RFC 9068 §4: `at+jwt`, or its full media type, compared case-insensitively (RFC 7515 §4.1.9).
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn header(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn an_access_token_header_passes_and_names_its_key() {
        let checked = check(&header(
            json!({"typ": "at+jwt", "alg": "ES256", "kid": "k1"}),
        ));
        assert_eq!(
            checked,
            Ok(CheckedHeader {
                alg: Algorithm::Es256,
                kid: "k1".into()
            })
        );
    }

    #[test]
    fn the_type_is_compared_case_insensitively_and_may_be_the_media_type() {
        for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
            let checked = check(&header(json!({"typ": typ, "alg": "EdDSA", "kid": "k"})));
            assert!(checked.is_ok(), "{typ}");
        }
    }

    #[test]
    fn a_plain_jwt_or_a_missing_type_is_not_an_access_token() {
        for typ in [json!("JWT"), json!("jwt"), json!(null), json!(1)] {
            let checked = check(&header(json!({"typ": typ, "alg": "ES256", "kid": "k"})));
            assert_eq!(checked, Err(VerifyError::WrongType), "{typ}");
        }
        let checked = check(&header(json!({"alg": "ES256", "kid": "k"})));
        assert_eq!(checked, Err(VerifyError::WrongType));
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        for alg in ["none", "HS256", "HS512"] {
            let checked = check(&header(json!({"typ": "at+jwt", "alg": alg, "kid": "k"})));
            assert_eq!(checked, Err(VerifyError::UnsupportedAlgorithm), "{alg}");
        }
        let checked = check(&header(json!({"typ": "at+jwt", "kid": "k"})));
        assert_eq!(checked, Err(VerifyError::UnsupportedAlgorithm));
    }

    #[test]
    fn headers_that_point_at_or_carry_a_key_are_refused() {
        for name in ["jku", "x5u", "jwk", "x5c", "crit"] {
            let mut value = json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"});
            value[name] = json!("https://attacker.example/keys");
            assert_eq!(
                check(&header(value)),
                Err(VerifyError::ForbiddenHeader(name))
            );
        }
    }

    #[test]
    fn a_token_without_a_key_id_is_refused() {
        let checked = check(&header(json!({"typ": "at+jwt", "alg": "ES256"})));
        assert_eq!(checked, Err(VerifyError::MissingKeyId));
        let checked = check(&header(json!({"typ": "at+jwt", "alg": "ES256", "kid": ""})));
        assert_eq!(checked, Err(VerifyError::MissingKeyId));
    }
}
