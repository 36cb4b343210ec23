//! `POST /auth/token`: the RFC 6749 token endpoint, form or JSON body, Basic or body client auth.

use std::sync::Arc;

use poem::http::header;
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Request};
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::client_auth::{ClientAuth, CredentialsError, client_credentials, request_source};
use super::errors::{OAuthError, OAuthErrorCode};
use crate::domain::TokenRequestTarget;
use crate::grants::{AuthMethod, TokenError, TokenParameters, TokenService};

/// Token request parameters (RFC 6749 §4.3.2, §4.4.2, §6; RFC 8707 `resource`). The same
/// fields are accepted as `application/x-www-form-urlencoded` (the standard) or
/// `application/json`.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename = "TokenRequest")]
pub struct TokenRequestBody {
    /// `client_credentials`, `password` or `refresh_token`.
    pub grant_type: String,
    /// With `client_secret`, for `client_secret_post`; omit when using HTTP Basic.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated; a subset of what may be granted (default: all of it).
    pub scope: Option<String>,
    /// RFC 8707 resource indicator: one of the client's audiences (default: its first).
    pub resource: Option<String>,
    /// Same as `resource`, for clients that send `audience`.
    pub audience: Option<String>,
    /// `password` grant.
    pub username: Option<String>,
    /// `password` grant.
    pub password: Option<String>,
    /// `refresh_token` grant.
    pub refresh_token: Option<String>,
}

/// The names of the token request's parameters, to name them in errors without echoing values.
const PARAMETERS: [&str; 9] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "audience",
    "username",
    "password",
    "refresh_token",
];

impl TokenRequestBody {
    fn optional_fields(&mut self) -> [&mut Option<String>; 8] {
        [
            &mut self.client_id,
            &mut self.client_secret,
            &mut self.scope,
            &mut self.resource,
            &mut self.audience,
            &mut self.username,
            &mut self.password,
            &mut self.refresh_token,
        ]
    }

    /// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    fn normalized(mut self) -> Self {
        for field in self.optional_fields() {
            if field.as_deref() == Some("") {
                *field = None;
            }
        }
        self
    }

    /// Form decoding replaces invalid UTF-8 with U+FFFD; such a parameter was not valid input.
    fn first_undecodable(&mut self) -> Option<&'static str> {
        let grant_type_bad = self.grant_type.contains('\u{FFFD}');
        let optional = self
            .optional_fields()
            .map(|f| f.as_deref().is_some_and(|v| v.contains('\u{FFFD}')));
        std::iter::once(grant_type_bad)
            .chain(optional)
            .zip(PARAMETERS)
            .find(|(bad, _)| *bad)
            .map(|(_, name)| name)
    }
}

#[derive(ApiRequest)]
pub enum TokenRequestPayload {
    Form(Form<TokenRequestBody>),
    Json(Json<TokenRequestBody>),
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Object)]
pub struct AccessTokenResponse {
    /// An RFC 9068 JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u32,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// For the `password` and `refresh_token` grants, to clients allowed `refresh_token`.
    /// Single use: each refresh returns a new one.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
}

// clippy reads the two `ty = "String"` of the header list as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(ApiResponse)]
#[oai(
    bad_request_handler = "bad_token_request",
    header(
        name = "Cache-Control",
        ty = "String",
        description = "Always `no-store`."
    ),
    header(name = "Pragma", ty = "String", description = "Always `no-cache`.")
)]
pub enum TokenResponse {
    /// A token was issued.
    #[oai(status = 200)]
    Ok(Json<AccessTokenResponse>),
    /// `invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`,
    /// `invalid_scope` or `invalid_target`.
    #[oai(status = 400)]
    BadRequest(Json<OAuthError>),
    /// `invalid_client`: unknown client, wrong secret, or no client authentication.
    #[oai(status = 401)]
    Unauthorized(Json<OAuthError>, #[oai(header = "WWW-Authenticate")] String),
    /// `invalid_request`: the body did not arrive within 10 s.
    #[oai(status = 408)]
    RequestTimeout(Json<OAuthError>),
    /// `invalid_request`: the body is larger than the server accepts.
    #[oai(status = 413)]
    PayloadTooLarge(Json<OAuthError>),
    /// `temporarily_unavailable`: too many failed attempts for this client, user or address.
    #[oai(status = 429)]
    TooManyRequests(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
    /// `server_error`, with the request id to quote.
    #[oai(status = 500)]
    ServerError(Json<OAuthError>),
}

fn invalid_request(description: impl Into<String>) -> TokenResponse {
    TokenResponse::BadRequest(Json(OAuthError::new(
        OAuthErrorCode::InvalidRequest,
        description,
    )))
}

/// Describes a body that did not parse, naming the parameter at fault but never a value (a
/// value may be a secret).
pub fn describe_payload_error(err: &poem::Error, parameters: &[&str]) -> String {
    if err.is::<poem_openapi::error::ContentTypeError>() {
        return "the body must be application/x-www-form-urlencoded or application/json".into();
    }
    let reason = err.to_string();
    let named = parameters
        .iter()
        .find(|p| reason.contains(&format!("`{p}`")) || reason.contains(&format!("\"{p}\"")));
    match named {
        Some(p) if reason.contains("duplicate field") => format!("parameter {p} is repeated"),
        Some(p) if reason.contains("missing") => format!("parameter {p} is missing"),
        Some(p) => format!("parameter {p} is malformed"),
        None => "the request body is malformed".to_owned(),
    }
}

fn bad_token_request(err: poem::Error) -> TokenResponse {
    let mut description = describe_payload_error(&err, &PARAMETERS);
    if description == "the request body is malformed" && err.to_string().contains("grant_type") {
        description = "parameter grant_type is missing".into();
    }
    invalid_request(description)
}

pub fn no_store(ep: impl Endpoint) -> impl Endpoint {
    ep.with(
        SetHeader::new()
            .overriding(header::CACHE_CONTROL, "no-store")
            .overriding(header::PRAGMA, "no-cache"),
    )
}

pub struct TokenApi {
    pub service: Arc<TokenService>,
    pub trust_forwarded_for: bool,
}

#[OpenApi(response_header(
    name = "X-Request-Id",
    ty = "String",
    description = "The request id (yours if you sent a sane one); quote it when reporting a problem."
))]
impl TokenApi {
    /// Issue an access token.
    ///
    /// The RFC 6749 token endpoint. Grants: `client_credentials`; `password` and
    /// `refresh_token` for clients allowed them. Client authentication: `client_secret_basic`
    /// (preferred) or `client_secret_post`. The access token is an RFC 9068 JWT to verify with
    /// the keys at `/.well-known/jwks.json`.
    #[oai(
        path = "/auth/token",
        method = "post",
        tag = "ApiTags::OAuth",
        operation_id = "issueToken",
        transform = "no_store"
    )]
    async fn token(
        &self,
        auth: ClientAuth,
        request: &Request,
        body: TokenRequestPayload,
    ) -> TokenResponse {
        let mut body = match body {
            TokenRequestPayload::Form(Form(body)) | TokenRequestPayload::Json(Json(body)) => body,
        }
        .normalized();
        if body.grant_type.is_empty() {
            return invalid_request("parameter grant_type is missing");
        }
        if let Some(name) = body.first_undecodable() {
            return invalid_request(format!("parameter {name} is not valid UTF-8"));
        }
        let credentials = match client_credentials(
            auth,
            request,
            body.client_id.as_deref(),
            body.client_secret.as_deref(),
        ) {
            Ok(credentials) => credentials,
            Err(CredentialsError::Conflicting(why)) => return invalid_request(why),
            Err(CredentialsError::MalformedBasic) => {
                return token_error(TokenError::InvalidClient {
                    method: Some(AuthMethod::Basic),
                });
            }
        };
        let grant_type = grant_type_label(&body.grant_type);
        let params = TokenParameters {
            grant_type: body.grant_type,
            scope: body.scope,
            target: TokenRequestTarget {
                resource: body.resource,
                audience: body.audience,
            },
            username: body.username,
            password: body.password,
            refresh_token: body.refresh_token,
        };
        let source = request_source(request, self.trust_forwarded_for);
        match self.service.issue(credentials, params, source).await {
            Ok(token) => {
                metrics::counter!("tokens_issued_total", "grant_type" => grant_type).increment(1);
                TokenResponse::Ok(Json(AccessTokenResponse {
                    access_token: token.access_token,
                    token_type: "Bearer".into(),
                    expires_in: token.expires_in,
                    scope: token.scope.to_string(),
                    refresh_token: token.refresh_token,
                }))
            }
            Err(err) => token_error(err),
        }
    }
}

fn grant_type_label(grant_type: &str) -> &'static str {
    match grant_type {
        "client_credentials" => "client_credentials",
        "password" => "password",
        "refresh_token" => "refresh_token",
        _ => "other",
    }
}

pub fn basic_challenge() -> String {
    r#"Basic realm="auth-server""#.to_owned()
}

pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn token_error(err: TokenError) -> TokenResponse {
    use OAuthErrorCode as Code;
    let code = match &err {
        TokenError::InvalidRequest(_) => Code::InvalidRequest,
        TokenError::InvalidClient { .. } => Code::InvalidClient,
        TokenError::InvalidGrant(_) => Code::InvalidGrant,
        TokenError::UnauthorizedClient(_) => Code::UnauthorizedClient,
        TokenError::UnsupportedGrantType => Code::UnsupportedGrantType,
        TokenError::InvalidScope(_) => Code::InvalidScope,
        TokenError::InvalidTarget => Code::InvalidTarget,
        TokenError::Throttled { .. } => Code::TemporarilyUnavailable,
        TokenError::Internal(_) => Code::ServerError,
    };
    metrics::counter!("token_errors_total", "error" => format!("{code:?}")).increment(1);
    let bad =
        |description: String| TokenResponse::BadRequest(Json(OAuthError::new(code, description)));
    match err {
        TokenError::InvalidRequest(description) => invalid_request(description),
        TokenError::InvalidClient { method } => {
            let description = if method.is_some() {
                "client authentication failed"
            } else {
                "client authentication is required: HTTP Basic or client_id and client_secret"
            };
            TokenResponse::Unauthorized(Json(OAuthError::new(code, description)), basic_challenge())
        }
        TokenError::InvalidGrant(why) => bad(why.to_owned()),
        TokenError::UnauthorizedClient(grant) => {
            bad(format!("this client may not use the {grant} grant"))
        }
        TokenError::UnsupportedGrantType => {
            bad("supported grant types: client_credentials, password, refresh_token".into())
        }
        TokenError::InvalidScope(description) => bad(description),
        TokenError::InvalidTarget => {
            bad("the requested resource or audience is not one this token may be issued for".into())
        }
        TokenError::Throttled { retry_after } => {
            let secs = retry_after_secs(retry_after);
            TokenResponse::TooManyRequests(
                Json(OAuthError::new(
                    code,
                    format!("too many failed attempts; retry in {secs} s"),
                )),
                secs,
            )
        }
        TokenError::Internal(cause) => {
            tracing::error!(error = cause, "token request failed");
            TokenResponse::ServerError(Json(OAuthError::server_error()))
        }
    }
}
