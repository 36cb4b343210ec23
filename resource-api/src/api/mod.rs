//! The HTTP face of the service: poem-openapi operations, docs, metrics, and the request
//! context every request passes (see `service_kit::request`). Nothing below this module knows
//! about HTTP.

mod body;
mod dto;
mod health;
mod players;
mod problem;
mod scouting;

use poem::{Endpoint, EndpointExt, Response, Route, get, handler, http::Method, web::Data};
use poem_openapi::OpenApiService;
use service_kit::openapi::{DocumentInfo, describe, finish, with_docs};
use service_kit::request::{AllowedMethods, BodyLimits, RequestContext};
use token_verifier::{TokenVerifier, openapi::ProtectedResourceApi};

pub use players::scopes;

pub use body::BodyLimit;

use crate::{config::Settings, scouting::ScoutingClient, storage::PlayerRepository};

type Apis = (
    players::PlayersApi,
    scouting::ScoutingApi,
    health::HealthApi,
    ProtectedResourceApi,
);

fn info(server: &str) -> DocumentInfo<'_> {
    DocumentInfo {
        title: "Players API",
        version: env!("CARGO_PKG_VERSION"),
        description: "Argentina's 2022 World Cup squad. Reads are open; writes need an access \
                      token from the auth-server with the `players:write` scope and this API's \
                      audience.",
        server,
        license: "MIT OR Apache-2.0",
        license_url: "https://spdx.org/licenses/MIT.html",
    }
}

/// The OpenAPI document (JSON) for these settings, with the issuer's real token endpoint: from
/// the code alone, no database, no issuer.
pub fn spec_document(settings: &Settings) -> String {
    let document = service_kit::openapi::document::<Apis>(&info(&settings.public_url()));
    token_verifier::openapi::with_token_url(&document, &settings.token_url())
}

/// Every route of the service, wrapped in the request context.
pub fn routes(
    players: PlayerRepository,
    verifier: TokenVerifier,
    scouting: Option<ScoutingClient>,
    settings: &Settings,
) -> impl Endpoint<Output = Response> + use<> {
    let apis = (
        players::PlayersApi {
            players: players.clone(),
        },
        scouting::ScoutingApi {
            players: players.clone(),
            scouting,
        },
        health::HealthApi {
            players,
            verifier: verifier.clone(),
        },
        ProtectedResourceApi,
    );
    let public_url = settings.public_url();
    let info = info(&public_url);
    let service = describe(OpenApiService::new(apis, info.title, info.version), &info);
    let spec =
        token_verifier::openapi::with_token_url(&finish(&service.spec()), &settings.token_url());
    let allowed = AllowedMethods::of_openapi::<Apis>()
        .with("/docs", vec![Method::GET])
        .with("/openapi.json", vec![Method::GET])
        .with("/metrics", vec![Method::GET]);
    // The body is read by the write operations themselves, after the token was checked, within
    // service-kit's deadline (the auth-server's too).
    let limits = BodyLimits {
        read_first: false,
        ..BodyLimits::new(settings.max_body_bytes)
    };
    with_docs(Route::new(), &service, &spec)
        .at("/metrics", get(prometheus))
        .nest("/", service)
        .data(verifier)
        .data(BodyLimit(limits))
        .with(RequestContext::new(problem::ErrorShapes, limits, allowed))
}

#[handler]
fn prometheus(Data(verifier): Data<&TokenVerifier>) -> Response {
    metrics::gauge!("issuer_keys_ready").set(if verifier.is_ready() { 1.0 } else { 0.0 });
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(service_kit::telemetry::render_metrics())
}
