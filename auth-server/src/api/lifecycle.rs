//! `POST /auth/introspect` (RFC 7662) and `POST /auth/revoke` (RFC 7009), both
//! client-authenticated like the token endpoint.

use std::sync::Arc;

use poem::Request;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::client_auth::{
    BodyCredentials, ClientAuth, CredentialsError, client_credentials, request_source,
};
use super::errors::{OAuthError, OAuthErrorCode};
use super::token::{
    UNAVAILABLE_RETRY_AFTER_SECS, basic_challenge, describe_payload_error, no_store,
    retry_after_secs, unavailable,
};
use crate::domain::Client;
use crate::grants::{AuthMethod, Introspection, RevokeError, TokenError, TokenService};
use crate::net::TrustedProxies;

const PARAMETERS: [&str; 6] = [
    "token",
    "token_type_hint",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// The token to introspect or revoke, with optional client credentials (`client_secret_post`).
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename = "TokenLookupRequest")]
pub struct TokenLookupBody {
    pub token: String,
    /// `access_token` or `refresh_token`: where to look first.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `private_key_jwt` or a federated identity (RFC 7523 §2.2): a signed JWT.
    pub client_assertion: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, with `client_assertion`.
    pub client_assertion_type: Option<String>,
}

#[derive(ApiRequest)]
pub enum TokenLookupPayload {
    Form(Form<TokenLookupBody>),
    Json(Json<TokenLookupBody>),
}

/// RFC 7662 §2.2. Only `active` is present for an inactive token.
#[derive(Debug, Clone, Object, Default)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[oai(skip_serializing_if_is_none)]
    pub scope: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    /// The resource owner, for tokens from the password grant.
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub iss: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// `Bearer` or `DPoP` (a DPoP-bound access token), or `refresh_token`.
    #[oai(skip_serializing_if_is_none)]
    pub token_type: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub jti: Option<String>,
    /// RFC 9449 §6.2: the key a DPoP-bound token is bound to.
    #[oai(skip_serializing_if_is_none)]
    pub cnf: Option<ConfirmationClaim>,
    /// RFC 8693 §4.1, for a token made by a token exchange: `{"sub": <the acting client>}`,
    /// with the actor before it nested as `act`.
    #[oai(skip_serializing_if_is_none)]
    pub act: Option<serde_json::Value>,
}

/// `cnf` of a DPoP-bound token.
#[derive(Debug, Clone, Object)]
pub struct ConfirmationClaim {
    /// RFC 7638 thumbprint of the client's DPoP key.
    pub jkt: String,
}

#[allow(clippy::duplicated_attributes)]
#[derive(ApiResponse)]
#[oai(
    bad_request_handler = "bad_introspect_request",
    header(
        name = "Cache-Control",
        ty = "String",
        description = "Always `no-store`."
    ),
    header(name = "Pragma", ty = "String", description = "Always `no-cache`.")
)]
pub enum IntrospectResponse {
    /// What the server knows of the token; `{"active": false}` for anything not live.
    #[oai(status = 200)]
    Ok(Json<Box<IntrospectionResponse>>),
    /// `invalid_request`.
    #[oai(status = 400)]
    BadRequest(Json<OAuthError>),
    /// `invalid_client`.
    #[oai(status = 401)]
    Unauthorized(Json<OAuthError>, #[oai(header = "WWW-Authenticate")] String),
    /// `invalid_request`: the body did not arrive within 10 s.
    #[oai(status = 408)]
    RequestTimeout(Json<OAuthError>),
    /// `invalid_request`: the body is larger than the server accepts.
    #[oai(status = 413)]
    PayloadTooLarge(Json<OAuthError>),
    /// `temporarily_unavailable`: too many failed client authentications.
    #[oai(status = 429)]
    TooManyRequests(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
    /// `server_error`.
    #[oai(status = 500)]
    ServerError(Json<OAuthError>),
    /// `temporarily_unavailable`: a dependency (the database) cannot be reached now.
    #[oai(status = 503)]
    ServiceUnavailable(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
}

#[allow(clippy::duplicated_attributes)]
#[derive(ApiResponse)]
#[oai(
    bad_request_handler = "bad_revoke_request",
    header(
        name = "Cache-Control",
        ty = "String",
        description = "Always `no-store`."
    ),
    header(name = "Pragma", ty = "String", description = "Always `no-cache`.")
)]
pub enum RevokeResponse {
    /// Revoked, or there was no such token (RFC 7009 §2.2).
    #[oai(status = 200)]
    Ok,
    /// `invalid_request`, or `unauthorized_client` for a token issued to another client.
    #[oai(status = 400)]
    BadRequest(Json<OAuthError>),
    /// `invalid_client`.
    #[oai(status = 401)]
    Unauthorized(Json<OAuthError>, #[oai(header = "WWW-Authenticate")] String),
    /// `invalid_request`: the body did not arrive within 10 s.
    #[oai(status = 408)]
    RequestTimeout(Json<OAuthError>),
    /// `invalid_request`: the body is larger than the server accepts.
    #[oai(status = 413)]
    PayloadTooLarge(Json<OAuthError>),
    /// `temporarily_unavailable`: too many failed client authentications.
    #[oai(status = 429)]
    TooManyRequests(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
    /// `server_error`.
    #[oai(status = 500)]
    ServerError(Json<OAuthError>),
    /// `temporarily_unavailable`: a dependency (the database) cannot be reached now.
    #[oai(status = 503)]
    ServiceUnavailable(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
}

/// The parts of an OAuth error answer both operations share.
enum Failure {
    BadRequest(OAuthError),
    Unauthorized(OAuthError),
    TooManyRequests(OAuthError, u64),
    Unavailable,
    Server,
}

impl From<Failure> for IntrospectResponse {
    fn from(f: Failure) -> Self {
        match f {
            Failure::BadRequest(e) => Self::BadRequest(Json(e)),
            Failure::Unauthorized(e) => Self::Unauthorized(Json(e), basic_challenge()),
            Failure::TooManyRequests(e, secs) => Self::TooManyRequests(Json(e), secs),
            Failure::Unavailable => {
                Self::ServiceUnavailable(Json(unavailable()), UNAVAILABLE_RETRY_AFTER_SECS)
            }
            Failure::Server => Self::ServerError(Json(OAuthError::server_error())),
        }
    }
}

impl From<Failure> for RevokeResponse {
    fn from(f: Failure) -> Self {
        match f {
            Failure::BadRequest(e) => Self::BadRequest(Json(e)),
            Failure::Unauthorized(e) => Self::Unauthorized(Json(e), basic_challenge()),
            Failure::TooManyRequests(e, secs) => Self::TooManyRequests(Json(e), secs),
            Failure::Unavailable => {
                Self::ServiceUnavailable(Json(unavailable()), UNAVAILABLE_RETRY_AFTER_SECS)
            }
            Failure::Server => Self::ServerError(Json(OAuthError::server_error())),
        }
    }
}

fn bad_request(err: &poem::Error) -> Failure {
    Failure::BadRequest(OAuthError::new(
        OAuthErrorCode::InvalidRequest,
        describe_payload_error(err, &PARAMETERS),
    ))
}

fn bad_introspect_request(err: poem::Error) -> IntrospectResponse {
    bad_request(&err).into()
}

fn bad_revoke_request(err: poem::Error) -> RevokeResponse {
    bad_request(&err).into()
}

fn auth_failure(err: TokenError) -> Failure {
    match err {
        TokenError::InvalidClient { method } => Failure::Unauthorized(OAuthError::new(
            OAuthErrorCode::InvalidClient,
            if method.is_some() {
                "client authentication failed"
            } else {
                "client authentication is required: HTTP Basic or client_id and client_secret"
            },
        )),
        TokenError::Throttled { retry_after } => {
            let secs = retry_after_secs(retry_after);
            Failure::TooManyRequests(
                OAuthError::new(
                    OAuthErrorCode::TemporarilyUnavailable,
                    format!("too many failed attempts; retry in {secs} s"),
                ),
                secs,
            )
        }
        TokenError::Unavailable(cause) => {
            tracing::warn!(error = cause, "token lookup: a dependency is unavailable");
            Failure::Unavailable
        }
        other => {
            tracing::error!(error = %other, "token lookup failed");
            Failure::Server
        }
    }
}

pub struct LifecycleApi {
    pub service: Arc<TokenService>,
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl LifecycleApi {
    /// Parses the body and authenticates the calling client.
    async fn caller(
        &self,
        auth: ClientAuth,
        request: &Request,
        body: TokenLookupPayload,
    ) -> Result<(Arc<Client>, TokenLookupBody), Failure> {
        let body = match body {
            TokenLookupPayload::Form(Form(b)) | TokenLookupPayload::Json(Json(b)) => b,
        };
        let empty_to_none = |v: Option<String>| v.filter(|s| !s.is_empty());
        let body = TokenLookupBody {
            client_id: empty_to_none(body.client_id),
            client_secret: empty_to_none(body.client_secret),
            client_assertion: empty_to_none(body.client_assertion),
            client_assertion_type: empty_to_none(body.client_assertion_type),
            token_type_hint: empty_to_none(body.token_type_hint),
            token: body.token,
        };
        let credentials = client_credentials(
            auth,
            request,
            BodyCredentials {
                client_id: body.client_id.as_deref(),
                client_secret: body.client_secret.as_deref(),
                client_assertion: body.client_assertion.as_deref(),
                client_assertion_type: body.client_assertion_type.as_deref(),
            },
        )
        .map_err(|e| match e {
            CredentialsError::Conflicting(why) => {
                Failure::BadRequest(OAuthError::new(OAuthErrorCode::InvalidRequest, why))
            }
            CredentialsError::MalformedBasic => auth_failure(TokenError::InvalidClient {
                method: Some(AuthMethod::Basic),
            }),
        })?;
        let client = self
            .service
            .authenticate(credentials, request_source(request, &self.trusted_proxies))
            .await
            .map_err(auth_failure)?;
        if body.token.is_empty() {
            return Err(Failure::BadRequest(OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "parameter token is missing",
            )));
        }
        Ok((client, body))
    }
}

#[OpenApi(response_header(
    name = "X-Request-Id",
    ty = "String",
    description = "The request id (yours if you sent a sane one); quote it when reporting a problem."
))]
impl LifecycleApi {
    /// Introspect a token (RFC 7662).
    ///
    /// Any authenticated client may introspect an access token; a refresh token only by the
    /// client it was issued to. Revoked, expired, spent or unknown tokens are `{"active": false}`.
    #[oai(
        path = "/auth/introspect",
        method = "post",
        tag = "ApiTags::OAuth",
        operation_id = "introspectToken",
        transform = "no_store"
    )]
    async fn introspect(
        &self,
        auth: ClientAuth,
        request: &Request,
        body: TokenLookupPayload,
    ) -> IntrospectResponse {
        let (client, body) = match self.caller(auth, request, body).await {
            Ok(found) => found,
            Err(failure) => return failure.into(),
        };
        let hint = body.token_type_hint.as_deref();
        match self.service.introspect(&client, &body.token, hint).await {
            Ok(Introspection::Inactive) => IntrospectResponse::Ok(Json(Box::default())),
            Ok(Introspection::Active {
                scope,
                client_id,
                username,
                sub,
                aud,
                iss,
                exp,
                iat,
                token_type,
                jti,
                jkt,
                act,
            }) => IntrospectResponse::Ok(Json(Box::new(IntrospectionResponse {
                active: true,
                scope: Some(scope),
                client_id: Some(client_id),
                username,
                sub: Some(sub),
                aud: Some(aud),
                iss: Some(iss),
                exp: Some(exp),
                iat: Some(iat),
                token_type: Some(token_type.to_owned()),
                jti,
                cnf: jkt.map(|jkt| ConfirmationClaim { jkt }),
                act: act.and_then(|act| serde_json::to_value(act).ok()),
            }))),
            Err(err) => auth_failure(err).into(),
        }
    }

    /// Revoke a token (RFC 7009).
    ///
    /// A refresh token is revoked with every token descending from the same login; an access
    /// token by its `jti` until it expires (introspection then reports it inactive; resource
    /// servers that verify locally accept it until `exp`). Unknown tokens get 200.
    #[oai(
        path = "/auth/revoke",
        method = "post",
        tag = "ApiTags::OAuth",
        operation_id = "revokeToken",
        transform = "no_store"
    )]
    async fn revoke(
        &self,
        auth: ClientAuth,
        request: &Request,
        body: TokenLookupPayload,
    ) -> RevokeResponse {
        let (client, body) = match self.caller(auth, request, body).await {
            Ok(found) => found,
            Err(failure) => return failure.into(),
        };
        match self
            .service
            .revoke(&client, &body.token, body.token_type_hint.as_deref())
            .await
        {
            Ok(()) => RevokeResponse::Ok,
            Err(RevokeError::NotYours) => RevokeResponse::BadRequest(Json(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "the token was not issued to this client",
            ))),
            Err(RevokeError::Unavailable(cause)) => {
                tracing::warn!(error = cause, "revocation: a dependency is unavailable");
                RevokeResponse::ServiceUnavailable(
                    Json(unavailable()),
                    UNAVAILABLE_RETRY_AFTER_SECS,
                )
            }
            Err(RevokeError::Internal(cause)) => {
                tracing::error!(error = cause, "revocation failed");
                RevokeResponse::ServerError(Json(OAuthError::server_error()))
            }
        }
    }
}
