//! The HTTP face of the service: poem-openapi operations, docs, metrics, and the layers
//! every request passes. Nothing below this module knows about HTTP.

mod body;
mod dto;
mod health;
mod observe;
mod players;
mod problem;

use poem::{
    Endpoint, EndpointExt, Response, Route, get, handler,
    http::StatusCode,
    middleware::CatchPanic,
    web::{Data, Html},
};
use poem_openapi::OpenApiService;
use token_verifier::TokenVerifier;

pub use body::BodyLimit;
pub use observe::REQUEST_ID_HEADER;

use crate::{config::Settings, storage::PlayerRepository, telemetry::Metrics};

type Apis = (players::PlayersApi, health::HealthApi);

fn service(players: PlayerRepository, verifier: TokenVerifier) -> OpenApiService<Apis, ()> {
    let apis = (
        players::PlayersApi {
            players: players.clone(),
        },
        health::HealthApi { players, verifier },
    );
    OpenApiService::new(apis, "Players API", env!("CARGO_PKG_VERSION")).description(
        "Argentina's 2022 World Cup squad. Reads are open; writes need an access token from \
         the auth-server with the `players:write` scope and this API's audience.",
    )
}

/// The OpenAPI document (JSON) for these settings, with the issuer's real token endpoint.
/// Needs neither the database nor the issuer.
pub fn spec_document(settings: &Settings) -> Result<String, token_verifier::ConfigError> {
    let verifier = TokenVerifier::new(settings.verifier_config())?;
    let service = service(PlayerRepository::disconnected(), verifier);
    Ok(token_verifier::openapi::with_token_url(
        &service.spec(),
        &settings.token_url(),
    ))
}

/// Every route of the service, wrapped in its layers.
pub fn routes(
    players: PlayerRepository,
    verifier: TokenVerifier,
    metrics: Metrics,
    token_url: &str,
    body_limit: usize,
) -> impl Endpoint<Output = Response> + use<> {
    let service = service(players, verifier.clone());
    let raw_spec = service.spec();
    let spec = token_verifier::openapi::with_token_url(&raw_spec, token_url);
    let docs = service.swagger_ui_html().replacen(&raw_spec, &spec, 1);

    Route::new()
        .at("/openapi.json", get(openapi_json).data(Spec(spec.into())))
        .at("/docs", get(swagger_ui).data(Docs(docs.into())))
        .at("/metrics", get(prometheus).data(metrics.clone()))
        .nest("/", service)
        .data(verifier)
        .data(BodyLimit(body_limit))
        .with(CatchPanic::new().with_handler(|_| {
            observe::problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &problem::Problem::internal(),
            )
        }))
        .with(observe::Observe { metrics })
}

#[derive(Clone)]
struct Spec(std::sync::Arc<str>);

#[derive(Clone)]
struct Docs(std::sync::Arc<str>);

#[handler]
fn openapi_json(Data(spec): Data<&Spec>) -> Response {
    Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(spec.0.to_string())
}

#[handler]
fn swagger_ui(Data(docs): Data<&Docs>) -> Html<String> {
    Html(docs.0.to_string())
}

#[handler]
fn prometheus(Data(metrics): Data<&Metrics>, Data(verifier): Data<&TokenVerifier>) -> Response {
    metrics.set_issuer_keys_ready(verifier.is_ready());
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
