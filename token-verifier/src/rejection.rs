//! The RFC 6750 §3 answer to a request whose token does not let it through: status, error
//! code, description and `WWW-Authenticate` challenge, the same whatever the framework.

use std::{fmt, sync::Arc};

use http::StatusCode;

use crate::dpop::{self, ProofError};
use crate::error::VerifyError;
use crate::request::Scheme;

/// Why a request may not do what it asked, as RFC 6750 §3 answers it.
#[derive(Clone, Debug)]
pub struct BearerRejection {
    realm: Arc<str>,
    reason: RejectionReason,
    scheme: Scheme,
    resource_metadata: Option<Arc<str>>,
}

/// The three answers of RFC 6750 §3, and RFC 9449's `invalid_dpop_proof`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionReason {
    /// No bearer token at all: 401 with a bare challenge.
    MissingToken,
    /// A token that failed verification: 401 `invalid_token`.
    InvalidToken(VerifyError),
    /// A valid token without the scope the operation needs: 403 `insufficient_scope`.
    InsufficientScope(&'static str),
    /// A DPoP-bound token whose proof is missing or wrong: 401 `invalid_dpop_proof`.
    InvalidDpopProof(ProofError),
}

/// The constructors name no RFC 9728 metadata: the verifier adds it to what it returns
/// ([`with_resource_metadata`](Self::with_resource_metadata)); a handler that checks scopes
/// itself should answer [`TokenVerifier::insufficient_scope`](crate::TokenVerifier::insufficient_scope),
/// which does too.
impl BearerRejection {
    pub fn missing_token(realm: Arc<str>) -> Self {
        Self {
            realm,
            reason: RejectionReason::MissingToken,
            scheme: Scheme::Bearer,
            resource_metadata: None,
        }
    }

    pub fn invalid_token(realm: Arc<str>, error: VerifyError) -> Self {
        Self {
            realm,
            reason: RejectionReason::InvalidToken(error),
            scheme: Scheme::Bearer,
            resource_metadata: None,
        }
    }

    pub fn insufficient_scope(realm: Arc<str>, scope: &'static str) -> Self {
        Self {
            realm,
            reason: RejectionReason::InsufficientScope(scope),
            scheme: Scheme::Bearer,
            resource_metadata: None,
        }
    }

    /// A DPoP proof missing or refused (RFC 9449 §7.1): challenged with the `DPoP` scheme.
    pub fn invalid_dpop_proof(realm: Arc<str>, error: ProofError) -> Self {
        Self {
            realm,
            reason: RejectionReason::InvalidDpopProof(error),
            scheme: Scheme::Dpop,
            resource_metadata: None,
        }
    }

    /// The same answer challenged with `scheme` (a DPoP-bound token's rejections name `DPoP`).
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// The same answer naming the API's RFC 9728 metadata document in its challenge
    /// (`resource_metadata="…"`, RFC 9728 §5.1); `None` names none.
    pub fn with_resource_metadata(mut self, url: Option<Arc<str>>) -> Self {
        self.resource_metadata = url;
        self
    }

    /// The URL of the API's RFC 9728 metadata that the challenge names, if any.
    pub fn resource_metadata(&self) -> Option<&str> {
        self.resource_metadata.as_deref()
    }

    /// The scheme the challenge names.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn reason(&self) -> &RejectionReason {
        &self.reason
    }

    /// The realm of the challenge: the API's audience.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// 401, or 403 for a missing scope.
    pub fn status(&self) -> StatusCode {
        match self.reason {
            RejectionReason::InsufficientScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code; none when no token was sent (§3.1).
    pub fn error_code(&self) -> Option<&'static str> {
        match self.reason {
            RejectionReason::MissingToken => None,
            RejectionReason::InvalidToken(_) => Some("invalid_token"),
            RejectionReason::InsufficientScope(_) => Some("insufficient_scope"),
            RejectionReason::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
        }
    }

    /// A short human explanation that never repeats the token.
    pub fn description(&self) -> String {
        match &self.reason {
            RejectionReason::MissingToken => match self.scheme {
                Scheme::Bearer => "a bearer token is required".into(),
                Scheme::Dpop => "a DPoP-bound access token and its proof are required".into(),
            },
            RejectionReason::InvalidToken(err) => err.to_string(),
            RejectionReason::InvalidDpopProof(err) => err.to_string(),
            RejectionReason::InsufficientScope(scope) => {
                format!("the token does not grant the scope {scope}")
            }
        }
    }

    /// The `WWW-Authenticate` challenge. A `DPoP` challenge also lists the proof algorithms
    /// accepted (RFC 9449 §7.1); with a metadata URL, it ends with `resource_metadata`
    /// (RFC 9728 §5.1).
    pub fn www_authenticate(&self) -> String {
        let realm = &self.realm;
        let scheme = self.scheme.name();
        let mut challenge = match &self.reason {
            RejectionReason::MissingToken => format!(r#"{scheme} realm="{realm}""#),
            RejectionReason::InvalidToken(err) => format!(
                r#"{scheme} realm="{realm}", error="invalid_token", error_description="{err}""#
            ),
            RejectionReason::InvalidDpopProof(err) => format!(
                r#"{scheme} realm="{realm}", error="invalid_dpop_proof", error_description="{err}""#
            ),
            RejectionReason::InsufficientScope(scope) => {
                format!(r#"{scheme} realm="{realm}", error="insufficient_scope", scope="{scope}""#)
            }
        };
        if self.scheme == Scheme::Dpop {
            challenge.push_str(&format!(r#", algs="{}""#, dpop::algorithm_names()));
        }
        if let Some(url) = &self.resource_metadata {
            challenge.push_str(&format!(r#", resource_metadata="{url}""#));
        }
        challenge
    }

    /// The JSON body the framework adapters answer with:
    /// `{"error": …, "error_description": …}` (`unauthorized` when no token was sent).
    pub fn json_body(&self) -> String {
        serde_json::json!({
            "error": self.error_code().unwrap_or("unauthorized"),
            "error_description": self.description(),
        })
        .to_string()
    }
}

impl fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

impl std::error::Error for BearerRejection {}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn realm() -> Arc<str> {
        Arc::from("players-api")
    }

    #[test]
    fn without_a_token_the_challenge_names_only_the_realm() {
        let rejection = BearerRejection::missing_token(realm());
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            rejection.www_authenticate(),
            r#"Bearer realm="players-api""#
        );
        assert_eq!(rejection.error_code(), None);
        assert_eq!(
            rejection.json_body(),
            r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
        );
    }

    #[test]
    fn a_bad_token_is_invalid_token_with_a_description() {
        let rejection = BearerRejection::invalid_token(realm(), VerifyError::Expired);
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            rejection.www_authenticate(),
            r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired""#
        );
        assert_eq!(
            rejection.json_body(),
            r#"{"error":"invalid_token","error_description":"token has expired"}"#
        );
    }

    #[test]
    fn a_missing_scope_is_forbidden_and_names_the_scope() {
        let rejection = BearerRejection::insufficient_scope(realm(), "players:write");
        assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            rejection.www_authenticate(),
            r#"Bearer realm="players-api", error="insufficient_scope", scope="players:write""#
        );
    }

    #[test]
    fn dpop_rejections_are_challenged_with_the_dpop_scheme_and_its_algorithms() {
        let rejection = BearerRejection::invalid_dpop_proof(realm(), ProofError::Url);
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            rejection.www_authenticate(),
            format!(
                r#"DPoP realm="players-api", error="invalid_dpop_proof", error_description="the DPoP proof is for another URL", algs="{}""#,
                dpop::algorithm_names()
            )
        );
        let rejection =
            BearerRejection::insufficient_scope(realm(), "players:write").with_scheme(Scheme::Dpop);
        assert!(
            rejection
                .www_authenticate()
                .starts_with(r#"DPoP realm="players-api", error="insufficient_scope""#)
        );
        let rejection = BearerRejection::missing_token(realm()).with_scheme(Scheme::Dpop);
        assert_eq!(rejection.error_code(), None);
        assert!(
            rejection
                .www_authenticate()
                .starts_with(r#"DPoP realm="players-api", algs=""#)
        );
    }

    #[test]
    fn a_metadata_url_ends_every_challenge() {
        let url: Arc<str> =
            Arc::from("https://players.example/.well-known/oauth-protected-resource");
        let rejection =
            BearerRejection::missing_token(realm()).with_resource_metadata(Some(Arc::clone(&url)));
        assert_eq!(
            rejection.www_authenticate(),
            r#"Bearer realm="players-api", resource_metadata="https://players.example/.well-known/oauth-protected-resource""#
        );
        assert_eq!(rejection.resource_metadata(), Some(&*url));
        let rejection = BearerRejection::invalid_dpop_proof(realm(), ProofError::Url)
            .with_resource_metadata(Some(url));
        assert!(rejection.www_authenticate().ends_with(&format!(
            r#", algs="{}", resource_metadata="https://players.example/.well-known/oauth-protected-resource""#,
            dpop::algorithm_names()
        )));
    }

    #[test]
    fn every_description_is_safe_inside_a_quoted_header_value() {
        let errors = [
            VerifyError::TooLarge,
            VerifyError::Malformed,
            VerifyError::UnsupportedAlgorithm,
            VerifyError::ForbiddenHeader("jku"),
            VerifyError::WrongType,
            VerifyError::MissingKeyId,
            VerifyError::UnknownKey,
            VerifyError::AlgorithmMismatch,
            VerifyError::BadSignature,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::MissingClaim("exp"),
            VerifyError::InvalidClaim("aud"),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(
                text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) && !text.contains('"'),
                "{text}"
            );
            assert!(
                HeaderValue::from_str(
                    &BearerRejection::invalid_token(realm(), err).www_authenticate()
                )
                .is_ok()
            );
        }
    }
}
