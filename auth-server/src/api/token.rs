//! `POST /auth/token`: the RFC 6749 token endpoint, form or JSON body, Basic or body client auth.

use std::sync::Arc;

use poem::http::header;
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Request};
use poem_openapi::auth::Basic;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi, SecurityScheme};
use serde::Deserialize;

use super::ApiTags;
use super::errors::{OAuthError, OAuthErrorCode};
use crate::domain::TokenRequestTarget;
use crate::grants::{AuthMethod, ClientCredentials, TokenError, TokenParameters, TokenService};

/// The names of the token request's parameters, to name them in errors without echoing values.
const PARAMETERS: [&str; 6] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "audience",
];

/// Token request parameters (RFC 6749 §4.4.2, RFC 8707 `resource`). The same fields are accepted
/// as `application/x-www-form-urlencoded` (the standard) or `application/json`.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename = "TokenRequest")]
pub struct TokenRequestBody {
    /// `client_credentials`.
    pub grant_type: String,
    /// With `client_secret`, for `client_secret_post`; omit when using HTTP Basic.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated; a subset of the client's scopes (default: all of them).
    pub scope: Option<String>,
    /// RFC 8707 resource indicator: one of the client's audiences (default: its first).
    pub resource: Option<String>,
    /// Same as `resource`, for clients that send `audience`.
    pub audience: Option<String>,
}

impl TokenRequestBody {
    /// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    fn normalized(mut self) -> Self {
        for field in [
            &mut self.client_id,
            &mut self.client_secret,
            &mut self.scope,
            &mut self.resource,
            &mut self.audience,
        ] {
            if field.as_deref() == Some("") {
                *field = None;
            }
        }
        self
    }

    /// Form decoding replaces invalid UTF-8 with U+FFFD; such a parameter was not valid input.
    fn first_undecodable(&self) -> Option<&'static str> {
        let values = [
            Some(&self.grant_type),
            self.client_id.as_ref(),
            self.client_secret.as_ref(),
            self.scope.as_ref(),
            self.resource.as_ref(),
            self.audience.as_ref(),
        ];
        PARAMETERS
            .into_iter()
            .zip(values)
            .find(|(_, value)| value.is_some_and(|v| v.contains('\u{FFFD}')))
            .map(|(name, _)| name)
    }
}

#[derive(ApiRequest)]
pub enum TokenRequestPayload {
    Form(Form<TokenRequestBody>),
    Json(Json<TokenRequestBody>),
}

/// `client_secret_basic`: `client_id:client_secret`, each form-urlencoded, then base64.
#[derive(SecurityScheme)]
#[oai(ty = "basic", rename = "client_secret_basic")]
pub struct ClientSecretBasic(Basic);

/// HTTP Basic, or credentials in the body (`client_secret_post`).
#[derive(SecurityScheme)]
pub enum ClientAuth {
    Basic(ClientSecretBasic),
    #[oai(fallback)]
    InBody,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Object)]
pub struct AccessTokenResponse {
    /// An RFC 9068 JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u32,
    /// The granted scopes, space-separated.
    pub scope: String,
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
    /// `invalid_request`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope` or
    /// `invalid_target`.
    #[oai(status = 400)]
    BadRequest(Json<OAuthError>),
    /// `invalid_client`: unknown client, wrong secret, or no client authentication.
    #[oai(status = 401)]
    Unauthorized(Json<OAuthError>, #[oai(header = "WWW-Authenticate")] String),
    /// `invalid_request`: the body is larger than the server accepts.
    #[oai(status = 413)]
    PayloadTooLarge(Json<OAuthError>),
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

/// Body and content-type errors, in the RFC 6749 shape. Names the parameter at fault, never a
/// value (a value may be a secret).
fn bad_token_request(err: poem::Error) -> TokenResponse {
    if err.is::<poem_openapi::error::ContentTypeError>() {
        return invalid_request(
            "the body must be application/x-www-form-urlencoded or application/json",
        );
    }
    let reason = err.to_string();
    let named = PARAMETERS
        .iter()
        .find(|p| reason.contains(&format!("`{p}`")) || reason.contains(&format!("\"{p}\"")));
    let description = match named {
        Some(p) if reason.contains("duplicate field") => format!("parameter {p} is repeated"),
        Some(p) if reason.contains("missing field") || reason.contains("missing") => {
            format!("parameter {p} is missing")
        }
        Some(p) => format!("parameter {p} is malformed"),
        None if reason.contains("grant_type") => "parameter grant_type is missing".to_owned(),
        None => "the request body is malformed".to_owned(),
    };
    invalid_request(description)
}

fn no_store(ep: impl Endpoint) -> impl Endpoint {
    ep.with(
        SetHeader::new()
            .overriding(header::CACHE_CONTROL, "no-store")
            .overriding(header::PRAGMA, "no-cache"),
    )
}

pub struct TokenApi {
    pub service: Arc<TokenService>,
}

#[OpenApi(response_header(
    name = "X-Request-Id",
    ty = "String",
    description = "The request id (yours if you sent a sane one); quote it when reporting a problem."
))]
impl TokenApi {
    /// Issue an access token.
    ///
    /// The RFC 6749 token endpoint. Grants: `client_credentials`. Client authentication:
    /// `client_secret_basic` (preferred) or `client_secret_post`. The token is an RFC 9068 JWT
    /// to verify with the keys at `/.well-known/jwks.json`.
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
        let body = match body {
            TokenRequestPayload::Form(Form(body)) | TokenRequestPayload::Json(Json(body)) => body,
        }
        .normalized();
        if body.grant_type.is_empty() {
            return invalid_request("parameter grant_type is missing");
        }
        if let Some(name) = body.first_undecodable() {
            return invalid_request(format!("parameter {name} is not valid UTF-8"));
        }
        let sent_authorization = request.headers().contains_key(header::AUTHORIZATION);
        let credentials = match client_credentials(auth, sent_authorization, &body) {
            Ok(credentials) => credentials,
            Err(response) => return response,
        };
        let grant_type = body.grant_type.clone();
        let params = TokenParameters {
            grant_type: body.grant_type,
            scope: body.scope,
            target: TokenRequestTarget {
                resource: body.resource,
                audience: body.audience,
            },
        };
        match self.service.issue(credentials, params).await {
            Ok(token) => {
                metrics::counter!("tokens_issued_total", "grant_type" => grant_type_label(&grant_type)).increment(1);
                TokenResponse::Ok(Json(AccessTokenResponse {
                    access_token: token.access_token,
                    token_type: "Bearer".into(),
                    expires_in: token.expires_in,
                    scope: token.scope.to_string(),
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

/// One authentication method per request (RFC 6749 §2.3): Basic, or id and secret in the body.
fn client_credentials(
    auth: ClientAuth,
    sent_authorization: bool,
    body: &TokenRequestBody,
) -> Result<Option<ClientCredentials>, TokenResponse> {
    match auth {
        ClientAuth::Basic(ClientSecretBasic(basic)) => {
            if body.client_secret.is_some() {
                return Err(invalid_request(
                    "use one client authentication method: HTTP Basic or client_secret in the body",
                ));
            }
            let (Some(id), Some(secret)) =
                (form_decode(&basic.username), form_decode(&basic.password))
            else {
                return Err(token_error(TokenError::InvalidClient {
                    method: Some(AuthMethod::Basic),
                }));
            };
            if body
                .client_id
                .as_ref()
                .is_some_and(|body_id| *body_id != id)
            {
                return Err(invalid_request(
                    "client_id differs from the HTTP Basic user",
                ));
            }
            Ok(Some(ClientCredentials {
                client_id: id,
                client_secret: secret,
                method: AuthMethod::Basic,
            }))
        }
        // An Authorization header that is not valid Basic: refuse rather than fall back.
        ClientAuth::InBody if sent_authorization => Err(token_error(TokenError::InvalidClient {
            method: Some(AuthMethod::Basic),
        })),
        ClientAuth::InBody => match (&body.client_id, &body.client_secret) {
            (Some(id), Some(secret)) => Ok(Some(ClientCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
                method: AuthMethod::Post,
            })),
            _ => Ok(None),
        },
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn token_error(err: TokenError) -> TokenResponse {
    use OAuthErrorCode as Code;
    let code = match &err {
        TokenError::InvalidRequest(_) => Code::InvalidRequest,
        TokenError::InvalidClient { .. } => Code::InvalidClient,
        TokenError::UnauthorizedClient(_) => Code::UnauthorizedClient,
        TokenError::UnsupportedGrantType => Code::UnsupportedGrantType,
        TokenError::InvalidScope(_) => Code::InvalidScope,
        TokenError::InvalidTarget => Code::InvalidTarget,
        TokenError::Internal(_) => Code::ServerError,
    };
    metrics::counter!("token_errors_total", "error" => format!("{code:?}")).increment(1);
    match err {
        TokenError::InvalidRequest(description) => invalid_request(description),
        TokenError::InvalidClient { method } => {
            tracing::debug!(?method, "client authentication failed");
            let description = if method.is_some() {
                "client authentication failed"
            } else {
                "client authentication is required: HTTP Basic or client_id and client_secret"
            };
            TokenResponse::Unauthorized(
                Json(OAuthError::new(code, description)),
                r#"Basic realm="auth-server""#.to_owned(),
            )
        }
        TokenError::UnauthorizedClient(grant) => TokenResponse::BadRequest(Json(OAuthError::new(
            code,
            format!("this client may not use the {grant} grant"),
        ))),
        TokenError::UnsupportedGrantType => TokenResponse::BadRequest(Json(OAuthError::new(
            code,
            "supported grant types: client_credentials",
        ))),
        TokenError::InvalidScope(description) => {
            TokenResponse::BadRequest(Json(OAuthError::new(code, description)))
        }
        TokenError::InvalidTarget => TokenResponse::BadRequest(Json(OAuthError::new(
            code,
            "the requested resource or audience is not one of this client's audiences",
        ))),
        TokenError::Internal(cause) => {
            tracing::error!(error = cause, "token request failed");
            TokenResponse::ServerError(Json(OAuthError::server_error()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_url_decoded() {
        assert_eq!(form_decode("a%3Ab+c%25").unwrap(), "a:b c%");
        assert!(form_decode("%FF").is_none());
    }
}
