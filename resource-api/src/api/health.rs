//! Liveness and readiness for orchestrators.

use poem_openapi::{ApiResponse, Object, OpenApi, Tags, payload::Json};
use token_verifier::TokenVerifier;

use crate::storage::PlayerRepository;

#[derive(Tags)]
enum ApiTags {
    /// Liveness and readiness.
    Health,
}

pub struct HealthApi {
    pub players: PlayerRepository,
    pub verifier: TokenVerifier,
}

/// What the service depends on, and how each is doing.
#[derive(Object)]
struct Health {
    /// `ok` or `unavailable`.
    status: String,
    /// `ok`, `unavailable`, or not checked (liveness).
    #[oai(skip_serializing_if_is_none)]
    database: Option<String>,
    /// `ok` once the issuer's keys were fetched, else `not fetched yet`.
    #[oai(skip_serializing_if_is_none)]
    issuer_keys: Option<String>,
}

#[derive(ApiResponse)]
enum LiveResponse {
    /// The process answers.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// The database answers and the issuer's keys are known: writes can be verified.
    #[oai(status = 200)]
    Ready(Json<Health>),
    /// A dependency is not there yet.
    #[oai(status = 503)]
    NotReady(Json<Health>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Is the process up?
    #[oai(path = "/health/live", method = "get", operation_id = "live")]
    async fn live(&self) -> LiveResponse {
        LiveResponse::Ok(Json(Health {
            status: "ok".into(),
            database: None,
            issuer_keys: None,
        }))
    }

    /// Can it serve every request: database reachable and issuer keys fetched at least once?
    #[oai(path = "/health/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ReadyResponse {
        let database_ok = match self.players.ping().await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "readiness: database unavailable");
                false
            }
        };
        let keys_ok = self.verifier.is_ready();
        let health = Health {
            status: if database_ok && keys_ok {
                "ok"
            } else {
                "unavailable"
            }
            .into(),
            database: Some(if database_ok { "ok" } else { "unavailable" }.into()),
            issuer_keys: Some(if keys_ok { "ok" } else { "not fetched yet" }.into()),
        };
        if database_ok && keys_ok {
            ReadyResponse::Ready(Json(health))
        } else {
            ReadyResponse::NotReady(Json(health))
        }
    }
}
