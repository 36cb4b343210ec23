//! The poem / poem-openapi side: an OAuth2 (client credentials) security scheme whose check
//! is a [`TokenVerifier`], and the RFC 6750 §3 answers when that check fails.
//!
//! A downstream API needs only configuration and its scope enum:
//!
//! ```ignore
//! #[derive(poem_openapi::OAuthScopes)]
//! enum Scope {
//!     /// Create, change and delete players.
//!     #[oai(rename = "players:write")]
//!     PlayersWrite,
//! }
//!
//! #[oai(path = "/players", method = "post")]
//! async fn create(&self, #[oai(scope = "Scope::PlayersWrite")] auth: OAuth2Bearer<Scope>) -> … {
//!     let caller = auth.require(Scope::PlayersWrite)?; // 401 / 403 as RFC 6750 says
//! }
//! ```
//! with the verifier given to the route as data (`.data(verifier)`), and the served spec
//! passed through [`with_token_url`] so that it names the issuer's real token endpoint.

use std::{fmt, marker::PhantomData, sync::Arc};

use poem::{
    Request, RequestBody, Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes,
    registry::{MetaOAuthFlow, MetaOAuthFlows, MetaSecurityScheme, Registry},
};

use crate::{TokenVerifier, VerifiedClaims, VerifyError};

/// The name of the security scheme in the spec's `components.securitySchemes`.
pub const SECURITY_SCHEME: &str = "oauth2";

/// poem-openapi wants a `'static` token URL while ours comes from configuration; the spec
/// carries this stand-in until [`with_token_url`] puts the real one in.
const TOKEN_URL_PLACEHOLDER: &str = "https://issuer.invalid/token";

/// The bearer credentials of a request, already checked by the [`TokenVerifier`] found in
/// the request's data. Extracting never fails: the operation says what it requires with
/// [`require`](Self::require), so that 401 and 403 are among its documented responses and
/// are answered before any complaint about the body.
pub struct OAuth2Bearer<S> {
    outcome: Result<VerifiedClaims, BearerRejection>,
    realm: Arc<str>,
    _scopes: PhantomData<fn() -> S>,
}

impl<S: OAuthScopes> OAuth2Bearer<S> {
    /// The caller's verified claims if the token is valid and grants `scope`; otherwise the
    /// RFC 6750 rejection: 401 without a token or with a bad one, 403 without the scope.
    pub fn require(&self, scope: S) -> Result<VerifiedClaims, BearerRejection> {
        let claims = self.outcome.as_ref().map_err(Clone::clone)?;
        if claims.has_scope(scope.name()) {
            Ok(claims.clone())
        } else {
            Err(BearerRejection::insufficient_scope(
                Arc::clone(&self.realm),
                scope.name(),
            ))
        }
    }

    /// The verified claims whatever their scopes, or why there are none.
    pub fn claims(&self) -> Result<&VerifiedClaims, &BearerRejection> {
        self.outcome.as_ref()
    }
}

impl<'a, S: OAuthScopes> ApiExtractor<'a> for OAuth2Bearer<S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SECURITY_SCHEME,
            MetaSecurityScheme {
                ty: "oauth2",
                description: Some(
                    "An RFC 9068 JWT access token from the issuer's token endpoint \
                     (client credentials), sent as `Authorization: Bearer <token>`.",
                ),
                name: None,
                key_in: None,
                scheme: None,
                bearer_format: None,
                flows: Some(MetaOAuthFlows {
                    implicit: None,
                    password: None,
                    client_credentials: Some(MetaOAuthFlow {
                        authorization_url: None,
                        token_url: Some(TOKEN_URL_PLACEHOLDER),
                        refresh_url: None,
                        scopes: S::meta(),
                    }),
                    authorization_code: None,
                }),
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(verifier) = request.data::<TokenVerifier>() else {
            tracing::error!("no TokenVerifier in the request data: add it with `.data(verifier)`");
            return Err(poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR));
        };
        Ok(Self {
            outcome: authenticate(verifier, request).await,
            realm: realm(verifier),
            _scopes: PhantomData,
        })
    }
}

/// Checks the request's bearer token (RFC 6750 §2.1, header only) with `verifier`: for
/// plain poem handlers, or wherever [`OAuth2Bearer`] does not fit.
pub async fn authenticate(
    verifier: &TokenVerifier,
    request: &Request,
) -> Result<VerifiedClaims, BearerRejection> {
    let realm = realm(verifier);
    let token = match bearer_token(request) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(BearerRejection::missing_token(realm)),
        Err(err) => return Err(BearerRejection::invalid_token(realm, err)),
    };
    match verifier.verify(token).await {
        Ok(claims) => Ok(claims),
        Err(err) => {
            // Debug, not info: a flood of bad tokens must not become a flood of log lines (the
            // 401s are counted in the metrics).
            tracing::debug!(reason = %err, "bearer token refused");
            Err(BearerRejection::invalid_token(realm, err))
        }
    }
}

fn realm(verifier: &TokenVerifier) -> Arc<str> {
    Arc::from(verifier.config().audience.as_str())
}

/// The token of an `Authorization: Bearer …` header. No header, or another scheme, is no
/// token; two headers or an empty token is a malformed one.
fn bearer_token(request: &Request) -> Result<Option<&str>, VerifyError> {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::Malformed);
    }
    let value = value.to_str().map_err(|_| VerifyError::Malformed)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(VerifyError::Malformed);
    }
    Ok(Some(token))
}

/// Why a request may not do what it asked, as RFC 6750 §3 answers it.
#[derive(Clone, Debug)]
pub struct BearerRejection {
    realm: Arc<str>,
    reason: RejectionReason,
}

/// The three answers of RFC 6750 §3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectionReason {
    /// No bearer token at all: 401 with a bare challenge.
    MissingToken,
    /// A token that failed verification: 401 `invalid_token`.
    InvalidToken(VerifyError),
    /// A valid token without the scope the operation needs: 403 `insufficient_scope`.
    InsufficientScope(&'static str),
}

impl BearerRejection {
    pub fn missing_token(realm: Arc<str>) -> Self {
        Self {
            realm,
            reason: RejectionReason::MissingToken,
        }
    }

    pub fn invalid_token(realm: Arc<str>, error: VerifyError) -> Self {
        Self {
            realm,
            reason: RejectionReason::InvalidToken(error),
        }
    }

    pub fn insufficient_scope(realm: Arc<str>, scope: &'static str) -> Self {
        Self {
            realm,
            reason: RejectionReason::InsufficientScope(scope),
        }
    }

    pub fn reason(&self) -> &RejectionReason {
        &self.reason
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
        }
    }

    /// A short human explanation that never repeats the token.
    pub fn description(&self) -> String {
        match &self.reason {
            RejectionReason::MissingToken => "a bearer token is required".into(),
            RejectionReason::InvalidToken(err) => err.to_string(),
            RejectionReason::InsufficientScope(scope) => {
                format!("the token does not grant the scope {scope}")
            }
        }
    }

    /// The `WWW-Authenticate` challenge.
    pub fn www_authenticate(&self) -> String {
        let realm = &self.realm;
        match &self.reason {
            RejectionReason::MissingToken => format!(r#"Bearer realm="{realm}""#),
            RejectionReason::InvalidToken(err) => format!(
                r#"Bearer realm="{realm}", error="invalid_token", error_description="{err}""#
            ),
            RejectionReason::InsufficientScope(scope) => {
                format!(r#"Bearer realm="{realm}", error="insufficient_scope", scope="{scope}""#)
            }
        }
    }
}

impl fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

impl std::error::Error for BearerRejection {}

/// For plain poem handlers: the status, the challenge and a JSON
/// `{"error", "error_description"}` body.
impl ResponseError for BearerRejection {
    fn status(&self) -> StatusCode {
        BearerRejection::status(self)
    }

    fn as_response(&self) -> Response {
        let body = serde_json::json!({
            "error": self.error_code().unwrap_or("unauthorized"),
            "error_description": self.description(),
        });
        let mut response = Response::builder()
            .status(BearerRejection::status(self))
            .content_type("application/json")
            .body(body.to_string());
        if let Ok(challenge) = HeaderValue::from_str(&self.www_authenticate()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// Puts the real token endpoint into a spec produced by poem-openapi (JSON), in every
/// security scheme that [`OAuth2Bearer`] registered. Anything that is not such a spec is
/// returned as it came.
pub fn with_token_url(spec: &str, token_url: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_owned();
    };
    let Some(schemes) = document
        .pointer_mut("/components/securitySchemes")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return spec.to_owned();
    };
    for scheme in schemes.values_mut() {
        let Some(flows) = scheme
            .get_mut("flows")
            .and_then(|flows| flows.as_object_mut())
        else {
            continue;
        };
        for flow in flows.values_mut() {
            if flow.get("tokenUrl").and_then(|url| url.as_str()) == Some(TOKEN_URL_PLACEHOLDER) {
                flow["tokenUrl"] = token_url.into();
                // OpenAPI requires `scopes`, even empty; poem-openapi leaves an empty one out.
                if flow.get("scopes").is_none() {
                    flow["scopes"] = serde_json::json!({});
                }
            }
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn a_bad_token_is_invalid_token_with_a_description() {
        let rejection = BearerRejection::invalid_token(realm(), VerifyError::Expired);
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            rejection.www_authenticate(),
            r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired""#
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

    #[test]
    fn the_token_url_placeholder_is_replaced_in_oauth2_flows() {
        let spec = serde_json::json!({
            "components": {"securitySchemes": {"oauth2": {"type": "oauth2", "flows": {
                "clientCredentials": {"tokenUrl": TOKEN_URL_PLACEHOLDER}
            }}}}
        })
        .to_string();
        let patched: serde_json::Value =
            serde_json::from_str(&with_token_url(&spec, "http://localhost:9000/auth/token"))
                .unwrap();
        let flow =
            &patched["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"];
        assert_eq!(flow["tokenUrl"], "http://localhost:9000/auth/token");
        assert_eq!(flow["scopes"], serde_json::json!({}));
    }

    fn request_with(values: &[&str]) -> Request {
        let mut builder = Request::builder();
        for value in values {
            builder = builder.header(header::AUTHORIZATION, *value);
        }
        builder.finish()
    }

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        assert_eq!(
            bearer_token(&request_with(&["bearer abc"])),
            Ok(Some("abc"))
        );
        assert_eq!(
            bearer_token(&request_with(&["Bearer  abc "])),
            Ok(Some("abc"))
        );
    }

    #[test]
    fn another_scheme_or_no_header_is_no_token() {
        assert_eq!(bearer_token(&request_with(&[])), Ok(None));
        assert_eq!(
            bearer_token(&request_with(&["Basic Zm9vOmJhcg=="])),
            Ok(None)
        );
    }

    #[test]
    fn an_empty_bearer_or_two_headers_are_malformed() {
        assert_eq!(
            bearer_token(&request_with(&["Bearer"])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&request_with(&["Bearer   "])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&request_with(&["Bearer a", "Bearer b"])),
            Err(VerifyError::Malformed)
        );
    }
}
