//! The HTTP layer (poem + poem-openapi): the only place that knows about HTTP.

mod client_auth;
mod errors;
mod health;
mod lifecycle;
mod middleware;
mod token;
mod wellknown;

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};
use sea_orm::DatabaseConnection;

pub use middleware::current_request_id;

use crate::grants::TokenService;
use crate::keys::KeyRing;
use crate::storage::ClientRepository;

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
    pub db: DatabaseConnection,
    pub clients: ClientRepository,
    pub keys: Arc<KeyRing>,
    pub tokens: Arc<TokenService>,
    pub issuer: String,
    pub jwks_max_age_secs: u32,
    pub max_body_bytes: usize,
    pub trust_forwarded_for: bool,
}

type Apis = (
    token::TokenApi,
    lifecycle::LifecycleApi,
    wellknown::WellKnownApi,
    health::HealthApi,
);

fn openapi_service(apis: Apis, server: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis, "auth-server", env!("CARGO_PKG_VERSION"))
        .description(
            "OAuth 2.0 authorization server: RFC 9068 JWT access tokens for the client-credentials \
             and password grants, refresh tokens with rotation, introspection (RFC 7662), \
             revocation (RFC 7009), published keys (JWKS) and RFC 8414 metadata.",
        )
        .server(server)
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then our handle renders nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

fn apis(state: &AppState) -> Apis {
    (
        token::TokenApi {
            service: state.tokens.clone(),
            trust_forwarded_for: state.trust_forwarded_for,
        },
        lifecycle::LifecycleApi {
            service: state.tokens.clone(),
            trust_forwarded_for: state.trust_forwarded_for,
        },
        wellknown::WellKnownApi {
            keys: state.keys.clone(),
            clients: state.clients.clone(),
            issuer: state.issuer.clone(),
            jwks_max_age_secs: state.jwks_max_age_secs,
        },
        health::HealthApi {
            db: state.db.clone(),
            keys: state.keys.clone(),
            metrics: metrics_handle(),
        },
    )
}

/// The whole HTTP application.
pub fn app(state: &AppState) -> impl Endpoint<Output = poem::Response> + use<> {
    let service = openapi_service(apis(state), &state.issuer);
    let ui = service.swagger_ui();
    let spec = service.spec_endpoint();
    Route::new()
        .nest("/", service)
        .nest("/docs", ui)
        .at("/openapi.json", spec)
        .with(CatchPanic::new())
        .with(middleware::RequestContext {
            max_body_bytes: state.max_body_bytes,
        })
}

/// The OpenAPI document as JSON (what `auth-server openapi` prints).
pub fn openapi_json(state: &AppState) -> String {
    openapi_service(apis(state), &state.issuer).spec()
}
