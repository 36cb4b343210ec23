//! The poem / poem-openapi side: an OAuth2 (client credentials) security scheme whose check
//! is a [`TokenVerifier`], and the RFC 6750 §3 answers when that check fails.
//!
//! A downstream API needs only configuration and its scope enum:
//!
//! ```text
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

use std::{marker::PhantomData, sync::Arc};

use poem::{
    Request, RequestBody, Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes,
    registry::{MetaOAuthFlow, MetaOAuthFlows, MetaSecurityScheme, Registry},
};

pub use crate::rejection::{BearerRejection, RejectionReason};
use crate::{ProtectedResourceMetadata, RequestParts, TokenVerifier, VerifiedClaims};

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
    /// The access token itself, when it was valid: to exchange it (RFC 8693).
    token: Option<Arc<str>>,
    realm: Arc<str>,
    resource_metadata: Option<Arc<str>>,
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
            Err(
                BearerRejection::insufficient_scope(Arc::clone(&self.realm), scope.name())
                    .with_scheme(claims.scheme())
                    .with_resource_metadata(self.resource_metadata.clone()),
            )
        }
    }

    /// The verified claims whatever their scopes, or why there are none.
    pub fn claims(&self) -> Result<&VerifiedClaims, &BearerRejection> {
        self.outcome.as_ref()
    }

    /// The valid access token the request carried, to exchange it for a token to another API
    /// on the caller's behalf ([`crate::exchange`]); `None` when it was not valid. Never log it.
    pub fn access_token(&self) -> Option<&str> {
        self.token.as_deref()
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
                     (client credentials), sent as `Authorization: Bearer <token>`; a \
                     DPoP-bound token (RFC 9449) as `Authorization: DPoP <token>` with a \
                     `DPoP` proof header.",
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
        let outcome = authenticate(verifier, request).await;
        let token = match &outcome {
            Ok(_) => crate::request::credentials(request.headers())
                .ok()
                .flatten()
                .map(|(_, token)| Arc::from(token)),
            Err(_) => None,
        };
        Ok(Self {
            outcome,
            token,
            realm: verifier.realm(),
            resource_metadata: verifier.resource_metadata_url(),
            _scopes: PhantomData,
        })
    }
}

/// Checks the request's access token (Bearer, or DPoP with its proof; header only) with `verifier`: for
/// plain poem handlers, or wherever [`OAuth2Bearer`] does not fit.
pub async fn authenticate(
    verifier: &TokenVerifier,
    request: &Request,
) -> Result<VerifiedClaims, BearerRejection> {
    verifier
        .authenticate(RequestParts::new(
            request.method(),
            request.uri(),
            request.headers(),
        ))
        .await
}

/// For plain poem handlers: the status, the challenge and a JSON
/// `{"error", "error_description"}` body.
impl ResponseError for BearerRejection {
    fn status(&self) -> StatusCode {
        BearerRejection::status(self)
    }

    fn as_response(&self) -> Response {
        let mut response = Response::builder()
            .status(BearerRejection::status(self))
            .content_type("application/json")
            .body(self.json_body());
        if let Ok(challenge) = HeaderValue::from_str(&self.www_authenticate()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// The API's RFC 9728 protected-resource metadata as an operation of its OpenAPI document
/// (`GET /.well-known/oauth-protected-resource`): add `ProtectedResourceApi` to the service's
/// APIs, with the [`TokenVerifier`] as data (as [`OAuth2Bearer`] needs anyway). Behind a
/// gateway that serves the API under a path (`https://gw.example/scouting`), the gateway maps
/// `/.well-known/oauth-protected-resource/scouting` to this path (RFC 9728 §3.1).
pub struct ProtectedResourceApi;

#[derive(poem_openapi::Tags)]
enum MetadataTags {
    /// RFC 9728 protected-resource metadata: which issuer protects this API.
    Metadata,
}

#[derive(poem_openapi::ApiResponse)]
enum MetadataResponse {
    /// The metadata (RFC 9728 §3.2).
    #[oai(status = 200)]
    Ok(
        poem_openapi::payload::Json<ProtectedResourceMetadata>,
        #[oai(header = "Cache-Control")] String,
    ),
    /// No public URL is configured and the request names no host (an HTTP/1.0 request
    /// without `Host`): there is no resource URL to publish.
    #[oai(status = 400)]
    NoHost(poem_openapi::payload::Json<MetadataError>),
}

/// Why there is no metadata document for this request.
#[derive(poem_openapi::Object)]
struct MetadataError {
    /// `invalid_request`.
    error: String,
    error_description: String,
}

#[poem_openapi::OpenApi(tag = "MetadataTags::Metadata")]
impl ProtectedResourceApi {
    /// Which issuer protects this API, its scopes, and how to send tokens (RFC 9728).
    #[oai(
        path = "/.well-known/oauth-protected-resource",
        method = "get",
        operation_id = "protectedResourceMetadata"
    )]
    async fn metadata(
        &self,
        request: &Request,
        verifier: poem::web::Data<&TokenVerifier>,
    ) -> MetadataResponse {
        let parts = RequestParts::new(request.method(), request.uri(), request.headers());
        match verifier.protected_resource_metadata(&parts) {
            Some(document) => MetadataResponse::Ok(
                poem_openapi::payload::Json(document),
                verifier.metadata_cache_control().into(),
            ),
            None => MetadataResponse::NoHost(poem_openapi::payload::Json(MetadataError {
                error: "invalid_request".into(),
                error_description: "the request names no host and no public URL is configured"
                    .into(),
            })),
        }
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
    use crate::VerifyError;

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

    #[tokio::test]
    async fn a_rejection_answers_with_its_status_challenge_and_json_body() {
        let rejection =
            BearerRejection::invalid_token(Arc::from("players-api"), VerifyError::Expired);

        let response = rejection.as_response();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired""#
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().into_string().await.unwrap();
        assert_eq!(
            body,
            r#"{"error":"invalid_token","error_description":"token has expired"}"#
        );
    }
}
