//! Rules on the claims of a token whose signature already checked out (RFC 9068 §4,
//! RFC 7519 §4.1), and the verified claims handed to handlers.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::VerifyError;
use crate::request::Scheme;

/// What a verified access token says about its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// `sub`: the client for client credentials, the user for the password grant.
    pub subject: String,
    /// `client_id`: the client the token was issued to.
    pub client_id: String,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `jti`, when present.
    pub jti: Option<String>,
    /// `exp`, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// `cnf.jkt` (RFC 9449 §6.1): the thumbprint of the key a DPoP-bound token is bound to.
    /// A bound token is accepted only with a proof signed by that key.
    pub dpop_jkt: Option<String>,
    /// `act` (RFC 8693 §4.1): who acts for the subject, the current actor first, then the
    /// actors before it (each exchange in a chain nests the previous `act`). Empty when the
    /// caller acts for itself.
    pub actors: Vec<String>,
}

/// Deepest `act` chain accepted: a chain of exchanges longer than this is not a real one.
const MAX_ACTORS: usize = 8;

impl VerifiedClaims {
    /// The party acting for the subject (`act.sub`), if the token came from a token exchange.
    pub fn actor(&self) -> Option<&str> {
        self.actors.first().map(String::as_str)
    }

    /// Whether the token is DPoP-bound (and was presented with a valid proof of its key).
    pub fn is_dpop_bound(&self) -> bool {
        self.dpop_jkt.is_some()
    }

    /// The scheme the token was presented with, and that a rejection of it must name.
    pub fn scheme(&self) -> Scheme {
        if self.is_dpop_bound() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        }
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}

/// The expectations a token's claims are held to.
pub(crate) struct ClaimRules<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub leeway: Duration,
    /// Seconds since the Unix epoch.
    pub now: i64,
}

impl ClaimRules<'_> {
    pub(crate) fn check(&self, claims: &Map<String, Value>) -> Result<VerifiedClaims, VerifyError> {
        let issuer = string_claim(claims, "iss")?;
        if issuer.trim_end_matches('/') != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !audience_contains(claims.get("aud"), self.audience)? {
            return Err(VerifyError::WrongAudience);
        }

        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let expires_at = time_claim(claims, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
        if self.now >= expires_at.saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        if let Some(not_before) = time_claim(claims, "nbf")?
            && not_before > self.now.saturating_add(leeway)
        {
            return Err(VerifyError::NotYetValid);
        }
        if let Some(issued_at) = time_claim(claims, "iat")?
            && issued_at > self.now.saturating_add(leeway)
        {
            return Err(VerifyError::InvalidClaim("iat"));
        }

        let scopes = match claims.get("scope") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(scope)) => {
                scope.split_ascii_whitespace().map(str::to_owned).collect()
            }
            Some(_) => return Err(VerifyError::InvalidClaim("scope")),
        };
        let jti = match claims.get("jti") {
            None | Some(Value::Null) => None,
            Some(Value::String(jti)) => Some(jti.clone()),
            Some(_) => return Err(VerifyError::InvalidClaim("jti")),
        };
        let dpop_jkt = match claims.get("cnf") {
            None | Some(Value::Null) => None,
            Some(Value::Object(cnf)) => match cnf.get("jkt") {
                None => None,
                Some(Value::String(jkt)) if !jkt.is_empty() => Some(jkt.clone()),
                Some(_) => return Err(VerifyError::InvalidClaim("cnf")),
            },
            Some(_) => return Err(VerifyError::InvalidClaim("cnf")),
        };
        Ok(VerifiedClaims {
            subject: string_claim(claims, "sub")?.to_owned(),
            client_id: string_claim(claims, "client_id")?.to_owned(),
            scopes,
            jti,
            expires_at,
            dpop_jkt,
            actors: actors(claims.get("act"))?,
        })
    }
}

/// The `sub`s of a nested `act` claim, outermost first. Each level must be an object with a
/// non-empty string `sub`; at most [`MAX_ACTORS`] levels.
fn actors(mut act: Option<&Value>) -> Result<Vec<String>, VerifyError> {
    let mut actors = Vec::new();
    loop {
        match act {
            None | Some(Value::Null) => return Ok(actors),
            Some(Value::Object(level)) if actors.len() < MAX_ACTORS => match level.get("sub") {
                Some(Value::String(sub)) if !sub.is_empty() => {
                    actors.push(sub.clone());
                    act = level.get("act");
                }
                _ => return Err(VerifyError::InvalidClaim("act")),
            },
            Some(_) => return Err(VerifyError::InvalidClaim("act")),
        }
    }
}

fn string_claim<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<&'c str, VerifyError> {
    match claims.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value),
        None | Some(Value::Null) => Err(VerifyError::MissingClaim(name)),
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

/// RFC 7519 NumericDate: integer or (as some libraries write it) fractional seconds.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(seconds) = number.as_i64() {
                return Ok(Some(seconds));
            }
            match number.as_f64() {
                // `as` saturates, and the range check keeps absurd values from wrapping.
                Some(seconds) if seconds.is_finite() && seconds.abs() < 1e15 => {
                    Ok(Some(seconds.floor() as i64))
                }
                _ => Err(VerifyError::InvalidClaim(name)),
            }
        }
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

/// RFC 7519 §4.1.3: a single string or an array of strings.
fn audience_contains(aud: Option<&Value>, audience: &str) -> Result<bool, VerifyError> {
    match aud {
        None | Some(Value::Null) => Err(VerifyError::MissingClaim("aud")),
        Some(Value::String(single)) => Ok(single == audience),
        Some(Value::Array(many)) => {
            if many.iter().all(Value::is_string) {
                Ok(many.iter().any(|item| item.as_str() == Some(audience)))
            } else {
                Err(VerifyError::InvalidClaim("aud"))
            }
        }
        Some(_) => Err(VerifyError::InvalidClaim("aud")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn rules() -> ClaimRules<'static> {
        ClaimRules {
            issuer: "http://localhost:9000",
            audience: "players-api",
            leeway: Duration::from_secs(60),
            now: NOW,
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "http://localhost:9000",
            "sub": "foobarbaz",
            "aud": "players-api",
            "client_id": "foobarbaz",
            "scope": "players:write players:read",
            "iat": NOW - 10,
            "nbf": NOW - 10,
            "exp": NOW + 3600,
            "jti": "2f0f7f7e",
        })
    }

    fn check(value: Value) -> Result<VerifiedClaims, VerifyError> {
        rules().check(value.as_object().unwrap())
    }

    #[test]
    fn valid_claims_become_the_callers_identity_and_scopes() {
        let verified = check(claims()).unwrap();
        assert_eq!(verified.subject, "foobarbaz");
        assert_eq!(verified.client_id, "foobarbaz");
        assert_eq!(verified.scopes, ["players:write", "players:read"]);
        assert!(verified.has_scope("players:write"));
        assert!(!verified.has_scope("players"));
        assert_eq!(verified.jti.as_deref(), Some("2f0f7f7e"));
        assert_eq!(verified.expires_at, NOW + 3600);
    }

    #[test]
    fn a_nested_act_claim_lists_the_actors_current_first() {
        let mut value = claims();
        value["act"] = json!({"sub": "players-api", "act": {"sub": "gateway"}});
        let verified = check(value).unwrap();
        assert_eq!(verified.actors, ["players-api", "gateway"]);
        assert_eq!(verified.actor(), Some("players-api"));

        assert_eq!(check(claims()).unwrap().actor(), None);
        for bad in [
            json!("players-api"),
            json!({"client_id": "players-api"}),
            json!({"sub": ""}),
            json!({"sub": "a", "act": "b"}),
        ] {
            let mut value = claims();
            value["act"] = bad.clone();
            assert_eq!(check(value), Err(VerifyError::InvalidClaim("act")), "{bad}");
        }
        let mut deep = json!({"sub": "actor-9"});
        for level in (1..=8).rev() {
            deep = json!({"sub": format!("actor-{level}"), "act": deep});
        }
        let mut value = claims();
        value["act"] = deep["act"].clone();
        assert_eq!(check(value).unwrap().actors.len(), 8, "eight levels pass");
        let mut value = claims();
        value["act"] = deep;
        assert_eq!(check(value), Err(VerifyError::InvalidClaim("act")));
    }

    #[test]
    fn another_issuer_is_not_trusted() {
        let mut value = claims();
        value["iss"] = json!("http://localhost:9999");
        assert_eq!(check(value), Err(VerifyError::WrongIssuer));
    }

    #[test]
    fn the_issuer_may_differ_only_by_a_trailing_slash() {
        let mut value = claims();
        value["iss"] = json!("http://localhost:9000/");
        assert!(check(value).is_ok());
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let mut value = claims();
        value["aud"] = json!("billing-api");
        assert_eq!(check(value), Err(VerifyError::WrongAudience));
        let mut value = claims();
        value["aud"] = json!(["billing-api", "other"]);
        assert_eq!(check(value), Err(VerifyError::WrongAudience));
    }

    #[test]
    fn an_audience_array_that_contains_ours_is_accepted() {
        let mut value = claims();
        value["aud"] = json!(["billing-api", "players-api"]);
        assert!(check(value).is_ok());
    }

    #[test]
    fn a_missing_or_malformed_audience_is_refused() {
        let mut value = claims();
        value.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(value), Err(VerifyError::MissingClaim("aud")));
        let mut value = claims();
        value["aud"] = json!(["players-api", 7]);
        assert_eq!(check(value), Err(VerifyError::InvalidClaim("aud")));
    }

    #[test]
    fn an_expired_token_is_refused_once_the_leeway_is_used_up() {
        let mut value = claims();
        value["exp"] = json!(NOW - 61);
        assert_eq!(check(value), Err(VerifyError::Expired));
        let mut value = claims();
        value["exp"] = json!(NOW - 59);
        assert!(check(value).is_ok(), "within the leeway");
    }

    #[test]
    fn a_token_without_exp_is_refused() {
        let mut value = claims();
        value.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(value), Err(VerifyError::MissingClaim("exp")));
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
        let mut value = claims();
        value["nbf"] = json!(NOW + 61);
        assert_eq!(check(value), Err(VerifyError::NotYetValid));
        let mut value = claims();
        value["nbf"] = json!(NOW + 59);
        assert!(check(value).is_ok(), "within the leeway");
    }

    #[test]
    fn fractional_times_are_read_as_whole_seconds() {
        let mut value = claims();
        value["exp"] = json!((NOW + 100) as f64 + 0.5);
        assert_eq!(check(value).unwrap().expires_at, NOW + 100);
    }

    #[test]
    fn times_that_are_not_numbers_are_refused() {
        let mut value = claims();
        value["exp"] = json!("tomorrow");
        assert_eq!(check(value), Err(VerifyError::InvalidClaim("exp")));
    }

    #[test]
    fn a_token_without_subject_or_client_id_is_refused() {
        for name in ["sub", "client_id"] {
            let mut value = claims();
            value.as_object_mut().unwrap().remove(name);
            assert_eq!(check(value), Err(VerifyError::MissingClaim(name)));
        }
    }

    #[test]
    fn a_token_without_scope_grants_nothing() {
        let mut value = claims();
        value.as_object_mut().unwrap().remove("scope");
        assert!(check(value).unwrap().scopes.is_empty());
    }
}
