//! `POST /auth/token`: the RFC 6749 token endpoint, form or JSON body, Basic or body client auth.

use std::sync::Arc;

use poem::http::header;
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Request};
use poem_openapi::param::Header;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiExtractor, ApiRequest, ApiResponse, Object, OpenApi};
use serde::Deserialize;

use service_kit::openapi::SerdeJson;

use super::ApiTags;
use super::client_auth::{
    BodyCredentials, ClientAuth, CredentialsError, client_credentials, request_source,
};
use super::errors::{OAuthError, OAuthErrorCode};
use crate::domain::TokenRequestTarget;
use crate::grants::{AuthMethod, Credentials, TokenError, TokenParameters, TokenService};
use crate::net::TrustedProxies;

/// Token request parameters (RFC 6749 §4.3.2, §4.4.2, §6; RFC 8707 `resource`). The same
/// fields are accepted as `application/x-www-form-urlencoded` (the standard) or
/// `application/json`.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename = "TokenRequest")]
pub struct TokenRequestBody {
    /// `client_credentials`, `password`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693).
    pub grant_type: String,
    /// With `client_secret`, for `client_secret_post`; omit when using HTTP Basic.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated; a subset of what may be granted (default: all of it).
    pub scope: Option<String>,
    /// RFC 8707 resource indicator: one of the client's APIs, by its id or its registered
    /// resource URI (default: the client's first). An API the client is not granted is
    /// `invalid_target`; a scope that API does not define is `invalid_scope`.
    pub resource: Option<String>,
    /// Same as `resource` (an API's id or resource URI), for clients that send `audience`; if
    /// both are sent they must name the same API.
    pub audience: Option<String>,
    /// `password` grant.
    pub username: Option<String>,
    /// `password` grant.
    pub password: Option<String>,
    /// `refresh_token` grant.
    pub refresh_token: Option<String>,
    /// `private_key_jwt` or a federated workload identity (RFC 7523 §2.2): a JWT signed by one
    /// of the client's keys, or by a trusted issuer about the client's external identity.
    pub client_assertion: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, with `client_assertion`.
    pub client_assertion_type: Option<String>,
    /// Token exchange: an access token of this issuer, meant for the calling client's API,
    /// whose subject the new token is for.
    pub subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub subject_token_type: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` (the default and the
    /// only type issued).
    pub requested_token_type: Option<String>,
    /// Token exchange: not accepted (the authenticated client is the actor).
    pub actor_token: Option<String>,
    /// Token exchange: not accepted, like `actor_token`.
    pub actor_token_type: Option<String>,
}

/// The names of the token request's parameters, to name them in errors without echoing values.
const PARAMETERS: [&str; 16] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "audience",
    "username",
    "password",
    "refresh_token",
    "client_assertion",
    "client_assertion_type",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
];

impl TokenRequestBody {
    fn optional_fields(&mut self) -> [&mut Option<String>; 15] {
        [
            &mut self.client_id,
            &mut self.client_secret,
            &mut self.scope,
            &mut self.resource,
            &mut self.audience,
            &mut self.username,
            &mut self.password,
            &mut self.refresh_token,
            &mut self.client_assertion,
            &mut self.client_assertion_type,
            &mut self.subject_token,
            &mut self.subject_token_type,
            &mut self.requested_token_type,
            &mut self.actor_token,
            &mut self.actor_token_type,
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
#[derive(Debug, Clone, Object, serde::Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Token exchange (RFC 8693 §2.2.1): `urn:ietf:params:oauth:token-type:access_token`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
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
    Ok(SerdeJson<Box<AccessTokenResponse>>),
    /// `invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`,
    /// `invalid_scope`, `invalid_target`, `invalid_dpop_proof` or `use_dpop_nonce` (with a
    /// fresh `DPoP-Nonce`).
    #[oai(status = 400)]
    BadRequest(
        Json<OAuthError>,
        #[oai(header = "DPoP-Nonce")] Option<String>,
    ),
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
    /// `temporarily_unavailable`: a dependency (the database) cannot be reached now.
    #[oai(status = 503)]
    ServiceUnavailable(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
}

fn invalid_request(description: impl Into<String>) -> TokenResponse {
    TokenResponse::BadRequest(
        Json(OAuthError::new(OAuthErrorCode::InvalidRequest, description)),
        None,
    )
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
    pub trusted_proxies: Arc<TrustedProxies>,
    /// `tokens_issued_total` by grant type, looked up once (a registry lookup per token costs
    /// a lock and a hash).
    pub issued_counters: [metrics::Counter; 5],
}

impl TokenApi {
    pub fn new(service: Arc<TokenService>, trusted_proxies: Arc<TrustedProxies>) -> Self {
        let counter =
            |grant: &'static str| metrics::counter!("tokens_issued_total", "grant_type" => grant);
        Self {
            service,
            trusted_proxies,
            issued_counters: [
                counter("client_credentials"),
                counter("password"),
                counter("refresh_token"),
                counter("token_exchange"),
                counter("other"),
            ],
        }
    }

    fn issued(&self, grant_type: &str) -> &metrics::Counter {
        let index = match grant_type {
            "client_credentials" => 0,
            "password" => 1,
            "refresh_token" => 2,
            "token_exchange" => 3,
            _ => 4,
        };
        &self.issued_counters[index]
    }
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
    /// (preferred), `client_secret_post`, or `private_key_jwt` (`client_assertion_type` and
    /// `client_assertion`, RFC 7523: a JWT signed by the client's registered key, or a workload
    /// identity token from a trusted issuer). The access token is an RFC 9068 JWT to verify with
    /// the keys at `/.well-known/jwks.json`; with a `DPoP` proof it is bound to the proof's key.
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
        /// RFC 9449 DPoP proof (a `dpop+jwt` signed by the client's key, `htm` POST, `htu`
        /// this endpoint's URL): the access token is then bound to that key (`cnf.jkt`,
        /// `token_type: DPoP`). Required for clients registered `dpop_bound`; with
        /// `dpop_require_nonce`, it must carry the last `DPoP-Nonce` the server sent. At most
        /// one. (Read from the request itself, so that every fault in it is answered
        /// `invalid_dpop_proof`; declared here for the document.)
        #[oai(name = "DPoP")]
        _dpop: Header<Option<String>>,
        request: &Request,
        body: TokenRequestPayload,
    ) -> TokenResponse {
        let ParsedTokenRequest {
            credentials,
            params,
        } = match parsed_request(auth, request, body) {
            Ok(parsed) => parsed,
            Err(refusal) => return refusal,
        };
        let grant_type = grant_type_label(&params.grant_type);
        let source = request_source(request, &self.trusted_proxies);
        match self.service.issue(credentials, params, source).await {
            Ok(token) => {
                self.issued(grant_type).increment(1);
                TokenResponse::Ok(SerdeJson(Box::new(AccessTokenResponse {
                    access_token: token.access_token,
                    token_type: if token.dpop_bound { "DPoP" } else { "Bearer" }.into(),
                    expires_in: token.expires_in,
                    scope: token.scope.to_string(),
                    refresh_token: token.refresh_token,
                    issued_token_type: token.issued_token_type.map(str::to_owned),
                })))
            }
            Err(err) => token_error(err, self.service.dpop_nonce()),
        }
    }
}

/// The request's one `DPoP` header, if any; `Err` for several or one that is not text.
fn dpop_header(request: &Request) -> Result<Option<&str>, ()> {
    let mut values = request.headers().get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    value.to_str().map(|v| Some(v.trim())).map_err(|_| ())
}

/// A token request as the grants receive it: the client credentials it carries (if any) and
/// its parameters. No `Debug`: it holds secrets.
pub struct ParsedTokenRequest {
    pub credentials: Option<Credentials>,
    pub params: TokenParameters,
}

/// The checks the endpoint makes on an extracted request before any grant runs.
fn parsed_request(
    auth: ClientAuth,
    request: &Request,
    body: TokenRequestPayload,
) -> Result<ParsedTokenRequest, TokenResponse> {
    let mut body = match body {
        TokenRequestPayload::Form(Form(body)) | TokenRequestPayload::Json(Json(body)) => body,
    }
    .normalized();
    if body.grant_type.is_empty() {
        return Err(invalid_request("parameter grant_type is missing"));
    }
    if let Some(name) = body.first_undecodable() {
        return Err(invalid_request(format!(
            "parameter {name} is not valid UTF-8"
        )));
    }
    let dpop_proof = dpop_header(request).map_err(|()| {
        token_error(
            TokenError::InvalidDpopProof("send exactly one DPoP header".into()),
            None,
        )
    })?;
    let credentials = match client_credentials(
        auth,
        request,
        BodyCredentials {
            client_id: body.client_id.as_deref(),
            client_secret: body.client_secret.as_deref(),
            client_assertion: body.client_assertion.as_deref(),
            client_assertion_type: body.client_assertion_type.as_deref(),
        },
    ) {
        Ok(credentials) => credentials,
        Err(CredentialsError::Conflicting(why)) => return Err(invalid_request(why)),
        Err(CredentialsError::MalformedBasic) => {
            return Err(token_error(
                TokenError::InvalidClient {
                    method: Some(AuthMethod::Basic),
                },
                None,
            ));
        }
    };
    Ok(ParsedTokenRequest {
        credentials,
        params: TokenParameters {
            grant_type: body.grant_type,
            scope: body.scope,
            target: TokenRequestTarget {
                resource: body.resource,
                audience: body.audience,
            },
            username: body.username,
            password: body.password,
            refresh_token: body.refresh_token,
            dpop_proof: dpop_proof.map(str::to_owned),
            subject_token: body.subject_token,
            subject_token_type: body.subject_token_type,
            requested_token_type: body.requested_token_type,
            actor_token: body.actor_token,
            actor_token_type: body.actor_token_type,
        },
    })
}

/// The token endpoint's whole parse phase on one request's raw parts, without a server or a
/// database: the same poem-openapi extractors (content type, form or JSON body, HTTP Basic)
/// and the same checks as `POST /auth/token`, ending where a grant would run. A refusal is the
/// response the endpoint would send. Public for the fuzz target (`fuzz/`, `token_request`);
/// nothing in the server calls it.
pub async fn parse_token_request(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> Result<ParsedTokenRequest, TokenResponse> {
    let mut builder = Request::builder()
        .method(poem::http::Method::POST)
        .uri(poem::http::Uri::from_static("/auth/token"));
    if let Some(value) = content_type {
        builder = builder.header(header::CONTENT_TYPE, value);
    }
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    let (mut request, mut body) = builder.body(body).split();
    // What poem-openapi's router puts in every request before the extractors run (the
    // security-scheme extractor reads it); the URI above has no query.
    request
        .extensions_mut()
        .insert(poem_openapi::__private::UrlQuery(Vec::new()));
    let auth = <ClientAuth as ApiExtractor>::from_request(&request, &mut body, Default::default())
        .await
        .map_err(bad_token_request)?;
    let payload = <TokenRequestPayload as ApiExtractor>::from_request(
        &request,
        &mut body,
        Default::default(),
    )
    .await
    .map_err(bad_token_request)?;
    parsed_request(auth, &request, payload)
}

fn grant_type_label(grant_type: &str) -> &'static str {
    match grant_type {
        "client_credentials" => "client_credentials",
        "password" => "password",
        "refresh_token" => "refresh_token",
        crate::domain::TOKEN_EXCHANGE => "token_exchange",
        _ => "other",
    }
}

pub fn basic_challenge() -> String {
    r#"Basic realm="auth-server""#.to_owned()
}

/// What a client is told to wait when a dependency is down.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

pub fn unavailable() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        "the service cannot complete this request right now; retry shortly",
    )
}

pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The RFC 6749 §5.2 (and RFC 9449 §5, §8) answer to `err`; `nonce` is the DPoP nonce to
/// send when the server requires them.
fn token_error(err: TokenError, nonce: Option<String>) -> TokenResponse {
    use OAuthErrorCode as Code;
    let code = match &err {
        TokenError::InvalidRequest(_) => Code::InvalidRequest,
        TokenError::InvalidClient { .. } => Code::InvalidClient,
        TokenError::InvalidGrant(_) => Code::InvalidGrant,
        TokenError::UnauthorizedClient(_) | TokenError::GrantNotForApi { .. } => {
            Code::UnauthorizedClient
        }
        TokenError::UnsupportedGrantType => Code::UnsupportedGrantType,
        TokenError::InvalidScope(_) => Code::InvalidScope,
        TokenError::InvalidTarget => Code::InvalidTarget,
        TokenError::InvalidDpopProof(_) => Code::InvalidDpopProof,
        TokenError::UseDpopNonce { .. } => Code::UseDpopNonce,
        TokenError::Throttled { .. } | TokenError::Unavailable(_) => Code::TemporarilyUnavailable,
        TokenError::Internal(_) => Code::ServerError,
    };
    metrics::counter!("token_errors_total", "error" => format!("{code:?}")).increment(1);
    let bad = |description: String| {
        TokenResponse::BadRequest(Json(OAuthError::new(code, description)), nonce.clone())
    };
    match err {
        TokenError::InvalidRequest(description) => invalid_request(description),
        TokenError::InvalidDpopProof(description) => bad(description),
        TokenError::UseDpopNonce { nonce: fresh } => TokenResponse::BadRequest(
            Json(OAuthError::new(
                code,
                "the DPoP proof must carry the nonce in the DPoP-Nonce header",
            )),
            Some(fresh),
        ),
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
        TokenError::GrantNotForApi { grant, api } => bad(format!(
            "the API {api} takes no tokens from the {grant} grant"
        )),
        TokenError::UnsupportedGrantType => bad(format!(
            "supported grant types: {}",
            crate::domain::GrantType::ALL
                .map(|grant| grant.as_str())
                .join(", ")
        )),
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
        TokenError::Unavailable(cause) => {
            tracing::warn!(error = cause, "token request: a dependency is unavailable");
            TokenResponse::ServiceUnavailable(Json(unavailable()), UNAVAILABLE_RETRY_AFTER_SECS)
        }
        TokenError::Internal(cause) => {
            tracing::error!(error = cause, "token request failed");
            TokenResponse::ServerError(Json(OAuthError::server_error()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const JSON: Option<&str> = Some("application/json");
    // svc-a:s3cret
    const BASIC: Option<&str> = Some("Basic c3ZjLWE6czNjcmV0");

    fn description(response: TokenResponse) -> (u16, String) {
        match response {
            TokenResponse::BadRequest(Json(e), _) => (400, e.error_description.unwrap_or_default()),
            TokenResponse::Unauthorized(Json(e), _) => {
                (401, e.error_description.unwrap_or_default())
            }
            _ => (0, "neither 400 nor 401".into()),
        }
    }

    async fn refused(content_type: Option<&str>, auth: Option<&str>, body: &str) -> (u16, String) {
        match parse_token_request(content_type, auth, body.into()).await {
            Ok(_) => (200, "accepted".into()),
            Err(response) => description(response),
        }
    }

    #[tokio::test]
    async fn parses_form_and_json_bodies_with_basic_or_body_credentials() {
        let form =
            parse_token_request(FORM, BASIC, b"grant_type=client_credentials&scope=a".into())
                .await
                .ok()
                .unwrap();
        let Some(Credentials::Secret(credentials)) = form.credentials else {
            panic!("HTTP Basic credentials expected");
        };
        assert_eq!(credentials.client_id, "svc-a");
        assert_eq!(credentials.client_secret, "s3cret");
        assert_eq!(credentials.method, AuthMethod::Basic);
        assert_eq!(form.params.scope.as_deref(), Some("a"));

        let body = br#"{"grant_type":"client_credentials","client_id":"c","client_secret":"s"}"#;
        let json = parse_token_request(JSON, None, body.to_vec())
            .await
            .ok()
            .unwrap();
        let Some(Credentials::Secret(credentials)) = json.credentials else {
            panic!("body credentials expected");
        };
        assert_eq!(credentials.method, AuthMethod::Post);
        assert_eq!(json.params.grant_type, "client_credentials");
    }

    #[tokio::test]
    async fn refuses_as_the_endpoint_does() {
        assert_eq!(
            refused(FORM, BASIC, "grant_type=client_credentials&client_secret=x").await,
            (
                400,
                "use one client authentication method: HTTP Basic or client_secret in the body"
                    .into()
            )
        );
        assert_eq!(
            refused(FORM, None, "grant_type=%FF").await,
            (400, "parameter grant_type is not valid UTF-8".into())
        );
        assert_eq!(
            refused(FORM, None, "scope=a").await,
            (400, "parameter grant_type is missing".into())
        );
        assert_eq!(
            refused(Some("text/plain"), None, "grant_type=x").await,
            (
                400,
                "the body must be application/x-www-form-urlencoded or application/json".into()
            )
        );
        assert_eq!(
            refused(FORM, Some("Basic !!!"), "grant_type=x").await.0,
            401
        );
        assert_eq!(
            refused(FORM, Some("Bearer abc"), "grant_type=x").await.0,
            401
        );
    }
}
