//! The HTTP layer (poem + poem-openapi): the only place that knows about HTTP. It sees the use
//! cases (`TokenService`) and two small views of the rest (`Discovery`, `Readiness`), never a
//! database.

mod body_hint;
mod client_auth;
mod errors;
mod health;
mod lifecycle;
mod token;
mod wellknown;

use std::sync::Arc;
use std::time::Duration;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};
use service_kit::openapi::{DocumentInfo, describe, finish, with_docs};
use service_kit::request::{AllowedMethods, BodyLimits, RequestContext};

pub use health::{Readiness, ReadyReport};
pub use token::{ParsedTokenRequest, TokenResponse, parse_token_request};
pub use wellknown::Discovery;

use crate::grants::TokenService;
use crate::net::TrustedProxies;

#[derive(Tags)]
pub enum ApiTags {
    /// Obtaining tokens.
    #[oai(rename = "oauth")]
    OAuth,
    /// Keys and metadata for clients and resource servers.
    #[oai(rename = "discovery")]
    Discovery,
    /// Probes and metrics.
    #[oai(rename = "operations")]
    Operations,
}

/// What the endpoints need.
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub discovery: Arc<dyn Discovery>,
    pub readiness: Arc<dyn Readiness>,
    /// The public base URL, without a trailing slash.
    pub issuer: String,
    pub jwks_max_age_secs: u32,
    pub max_body_bytes: usize,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub cors_allowed_origins: Vec<String>,
}

type Apis = (
    token::TokenApi,
    lifecycle::LifecycleApi,
    wellknown::WellKnownApi,
    health::HealthApi,
);

fn info(server: &str) -> DocumentInfo<'_> {
    DocumentInfo {
        title: "auth-server",
        version: env!("CARGO_PKG_VERSION"),
        description: "OAuth 2.0 authorization server: RFC 9068 JWT access tokens for the \
                      client-credentials and password grants, refresh tokens with rotation, \
                      introspection (RFC 7662), revocation (RFC 7009), published keys (JWKS) \
                      and RFC 8414 metadata.",
        server,
        license: "MIT OR Apache-2.0",
        license_url: "https://spdx.org/licenses/MIT.html",
    }
}

fn apis(state: &AppState) -> Apis {
    (
        token::TokenApi::new(state.tokens.clone(), state.trusted_proxies.clone()),
        lifecycle::LifecycleApi {
            service: state.tokens.clone(),
            trusted_proxies: state.trusted_proxies.clone(),
        },
        wellknown::WellKnownApi {
            discovery: state.discovery.clone(),
            issuer: state.issuer.clone(),
            jwks_max_age_secs: state.jwks_max_age_secs,
        },
        health::HealthApi {
            readiness: state.readiness.clone(),
        },
    )
}

/// The whole HTTP application.
pub fn app(state: &AppState) -> impl Endpoint<Output = poem::Response> + use<> {
    let info = info(&state.issuer);
    let service = describe(
        OpenApiService::new(apis(state), info.title, info.version),
        &info,
    );
    let spec = finish(&service.spec());
    let allowed = AllowedMethods::of_openapi::<Apis>()
        .with("/docs", vec![poem::http::Method::GET])
        .with("/openapi.json", vec![poem::http::Method::GET]);
    let limits = BodyLimits {
        max_bytes: state.max_body_bytes,
        deadline: Duration::from_secs(10),
        read_first: true,
    };
    with_docs(Route::new(), &service, &spec)
        .nest("/", service)
        .with_if(
            !state.cors_allowed_origins.is_empty(),
            service_kit::request::cors(&state.cors_allowed_origins),
        )
        .with(body_hint::JsonSentAsForm)
        .with(RequestContext::new(errors::ErrorShapes, limits, allowed))
}

/// The OpenAPI document as JSON (what `auth-server openapi` prints): from the code alone, no
/// database, no keys.
pub fn openapi_json(issuer: &str) -> String {
    service_kit::openapi::document::<Apis>(&info(issuer))
}
