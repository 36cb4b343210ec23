//! The axum / tower side: extractors that hand a handler its caller's verified claims, and a
//! tower layer that turns away every request without a good token before the handler (or
//! the body) is touched. Both run [`TokenVerifier::authenticate`] and answer refusals as
//! RFC 6750 §3 says: 401 with a `WWW-Authenticate: Bearer realm=…` challenge, `invalid_token`
//! with its description, 403 `insufficient_scope` naming the scope, and a JSON body
//! `{"error", "error_description"}`, exactly as the poem adapter does.
//!
//! A new API needs its scope and the verifier as (part of) its router state:
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use token_verifier::{TokenVerifier, VerifierConfig, axum::{Scope, Scoped}};
//!
//! struct WriteNotes;
//! impl Scope for WriteNotes {
//!     const NAME: &'static str = "notes:write";
//! }
//!
//! async fn add_note(caller: Scoped<WriteNotes>, note: String) -> String {
//!     format!("{} wrote {note}", caller.subject) // 401 / 403 never get here
//! }
//!
//! # async fn demo() -> Result<(), token_verifier::ConfigError> {
//! let verifier = TokenVerifier::start(VerifierConfig::new("https://auth.example", "notes-api"))?;
//! let app: Router = Router::new().route("/notes", post(add_note)).with_state(verifier);
//! # Ok(()) }
//! ```
//!
//! With a state of your own, implement `FromRef<YourState> for TokenVerifier` (or derive
//! `FromRef`). Without any state, guard routes with [`BearerLayer`] (for example through
//! `route_layer` or `MethodRouter::layer`) and read the claims with
//! `Extension<VerifiedClaims>`.

use std::{
    convert::Infallible,
    future::Future,
    marker::PhantomData,
    ops::Deref,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum_core::{
    extract::{FromRef, FromRequestParts},
    response::IntoResponse,
};
use http::{HeaderValue, Request, Response, header, request::Parts};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    BearerRejection, ProtectedResourceMetadata, RequestParts, TokenVerifier, VerifiedClaims,
};

/// A scope an operation requires, named as the issuer grants it.
pub trait Scope: Send + Sync + 'static {
    /// The scope as it appears in the token's `scope` claim, e.g. `notes:write`.
    const NAME: &'static str;
}

/// The verified claims of a request with a good bearer token, whatever its scopes (401
/// otherwise). [`require`](Self::require) checks a scope later, or take [`Scoped`] instead.
///
/// The verifier comes from the router state (`TokenVerifier: FromRef<S>`); claims a
/// [`BearerLayer`] already verified are reused, not verified twice.
#[derive(Clone, Debug)]
pub struct Bearer {
    claims: VerifiedClaims,
    realm: Arc<str>,
    resource_metadata: Option<Arc<str>>,
}

impl Bearer {
    /// The claims if the token grants `scope`; otherwise the 403 `insufficient_scope` answer.
    pub fn require(&self, scope: &'static str) -> Result<&VerifiedClaims, BearerRejection> {
        if self.claims.has_scope(scope) {
            Ok(&self.claims)
        } else {
            Err(
                BearerRejection::insufficient_scope(Arc::clone(&self.realm), scope)
                    .with_scheme(self.claims.scheme())
                    .with_resource_metadata(self.resource_metadata.clone()),
            )
        }
    }

    pub fn claims(&self) -> &VerifiedClaims {
        &self.claims
    }

    pub fn into_claims(self) -> VerifiedClaims {
        self.claims
    }
}

impl Deref for Bearer {
    type Target = VerifiedClaims;

    fn deref(&self) -> &VerifiedClaims {
        &self.claims
    }
}

impl<S> FromRequestParts<S> for Bearer
where
    TokenVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = TokenVerifier::from_ref(state);
        let realm = verifier.realm();
        let resource_metadata = verifier.resource_metadata_url();
        if let Some(claims) = parts.extensions.get::<VerifiedClaims>() {
            return Ok(Self {
                claims: claims.clone(),
                realm,
                resource_metadata,
            });
        }
        let claims = verifier.authenticate(RequestParts::of_parts(parts)).await?;
        parts.extensions.insert(claims.clone());
        Ok(Self {
            claims,
            realm,
            resource_metadata,
        })
    }
}

/// The verified claims of a request whose token grants the scope `S`: 401 without a good
/// token, 403 `insufficient_scope` without the scope. Put it before any body extractor, so
/// that a refused request is answered before its body is read.
pub struct Scoped<S> {
    claims: VerifiedClaims,
    _scope: PhantomData<fn() -> S>,
}

impl<S> Scoped<S> {
    pub fn claims(&self) -> &VerifiedClaims {
        &self.claims
    }

    pub fn into_claims(self) -> VerifiedClaims {
        self.claims
    }
}

impl<S> Deref for Scoped<S> {
    type Target = VerifiedClaims;

    fn deref(&self) -> &VerifiedClaims {
        &self.claims
    }
}

impl<S> std::fmt::Debug for Scoped<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped")
            .field("claims", &self.claims)
            .finish()
    }
}

impl<St, S> FromRequestParts<St> for Scoped<S>
where
    TokenVerifier: FromRef<St>,
    St: Send + Sync,
    S: Scope,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let bearer = Bearer::from_request_parts(parts, state).await?;
        bearer.require(S::NAME)?;
        Ok(Self {
            claims: bearer.into_claims(),
            _scope: PhantomData,
        })
    }
}

/// The RFC 6750 answer, for handlers that return `Result<_, BearerRejection>`.
impl IntoResponse for BearerRejection {
    fn into_response(self) -> axum_core::response::Response {
        rejection_response(&self)
    }
}

/// The status, the challenge and the JSON body of a rejection, in any body type that can be
/// made from a string (axum's `Body`, `String`, `Full<Bytes>`, …).
fn rejection_response<B: From<String>>(rejection: &BearerRejection) -> Response<B> {
    let mut response = Response::new(B::from(rejection.json_body()));
    *response.status_mut() = rejection.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Always a valid header value: realm, codes and descriptions are checked ASCII.
    if let Ok(challenge) = HeaderValue::from_str(&rejection.www_authenticate()) {
        headers.insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// The API's RFC 9728 protected-resource metadata for this request (see
/// [`TokenVerifier::protected_resource_metadata`]): an extractor (the verifier comes from the
/// router state) and the response that serves it. Route it with
/// [`protected_resource_metadata`].
pub struct ResourceMetadata {
    /// The document, or `None` when no public URL is configured and the request names no host.
    pub document: Option<ProtectedResourceMetadata>,
    /// The response's `Cache-Control` ([`TokenVerifier::metadata_cache_control`]).
    pub cache_control: &'static str,
}

impl<S> FromRequestParts<S> for ResourceMetadata
where
    TokenVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let verifier = TokenVerifier::from_ref(state);
        Ok(Self {
            document: verifier.protected_resource_metadata(&RequestParts::of_parts(parts)),
            cache_control: verifier.metadata_cache_control(),
        })
    }
}

/// 200 with the JSON document, or 400 `invalid_request` when no public URL is configured and
/// the request names no host.
impl IntoResponse for ResourceMetadata {
    fn into_response(self) -> axum_core::response::Response {
        let (status, body, cache) = match self.document {
            Some(document) => (
                http::StatusCode::OK,
                serde_json::to_string(&document).unwrap_or_default(),
                Some(self.cache_control),
            ),
            None => (
                http::StatusCode::BAD_REQUEST,
                serde_json::json!({
                    "error": "invalid_request",
                    "error_description":
                        "the request names no host and no public URL is configured",
                })
                .to_string(),
                None,
            ),
        };
        let mut response = axum_core::response::Response::new(body.into());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(cache) = cache {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        }
        response
    }
}

/// The handler of `GET /.well-known/oauth-protected-resource`:
/// `.route(resource_metadata::WELL_KNOWN_PATH, get(protected_resource_metadata))`. Behind a
/// gateway that serves the API under a path, the gateway maps the path-suffixed well-known URL
/// (RFC 9728 §3.1) to this one.
pub async fn protected_resource_metadata(metadata: ResourceMetadata) -> ResourceMetadata {
    metadata
}

/// A tower layer that lets through only requests with a good bearer token (and the scope,
/// when [`require_scope`](Self::require_scope) names one), and puts their
/// [`VerifiedClaims`] into the request extensions. Others get the RFC 6750 answer without
/// reaching the inner service: their body is never read.
#[derive(Clone)]
pub struct BearerLayer {
    verifier: TokenVerifier,
    scope: Option<&'static str>,
}

impl BearerLayer {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            verifier,
            scope: None,
        }
    }

    /// Also requires the token to grant `scope` (403 `insufficient_scope` otherwise).
    pub fn require_scope(mut self, scope: &'static str) -> Self {
        self.scope = Some(scope);
        self
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            verifier: self.verifier.clone(),
            scope: self.scope,
        }
    }
}

/// The service [`BearerLayer`] wraps around another.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    verifier: TokenVerifier,
    scope: Option<&'static str>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was made ready is the one to call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let scope = self.scope;
        Box::pin(async move {
            let parts = RequestParts::of_request(&request);
            let outcome = verifier
                .authenticate(parts)
                .await
                .and_then(|claims| match scope {
                    Some(scope) if !claims.has_scope(scope) => {
                        Err(verifier.insufficient_scope(&claims, scope))
                    }
                    _ => Ok(claims),
                });
            match outcome {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(rejection) => Ok(rejection_response(&rejection)),
            }
        })
    }
}
