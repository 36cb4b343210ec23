//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::ApiTags;
use super::errors::Problem;
use crate::keys::KeyRing;
use crate::storage;

#[derive(Debug, Clone, Object)]
pub struct HealthStatus {
    /// `ok`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum LiveResponse {
    /// The process is serving requests.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers and a signing key is loaded.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
    /// Not ready: the detail says which dependency is missing.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200)]
    Ok(PlainText<String>),
}

pub struct HealthApi {
    pub db: DatabaseConnection,
    pub keys: Arc<KeyRing>,
    pub metrics: PrometheusHandle,
}

fn ok() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".into(),
    })
}

#[OpenApi(response_header(
    name = "X-Request-Id",
    ty = "String",
    description = "The request id (yours if you sent a sane one); quote it when reporting a problem."
))]
impl HealthApi {
    /// Liveness probe.
    #[oai(
        path = "/health/live",
        method = "get",
        tag = "ApiTags::Operations",
        operation_id = "live"
    )]
    async fn live(&self) -> LiveResponse {
        LiveResponse::Ok(ok())
    }

    /// Readiness probe: checks the database and the signing key.
    #[oai(
        path = "/health/ready",
        method = "get",
        tag = "ApiTags::Operations",
        operation_id = "ready"
    )]
    async fn ready(&self) -> ReadyResponse {
        let unavailable = |detail: &str| {
            ReadyResponse::Unavailable(Json(Problem::new(
                503,
                "Service Unavailable",
                Some(detail.to_owned()),
            )))
        };
        if let Err(err) = storage::ping(&self.db).await {
            tracing::warn!(error = %err, "readiness: database unreachable");
            return unavailable("database unreachable");
        }
        if self.keys.active_kid().is_none() {
            return unavailable("no active signing key");
        }
        ReadyResponse::Ok(ok())
    }

    /// Prometheus metrics.
    #[oai(
        path = "/metrics",
        method = "get",
        tag = "ApiTags::Operations",
        operation_id = "metrics"
    )]
    async fn metrics(&self) -> MetricsResponse {
        MetricsResponse::Ok(PlainText(self.metrics.render()))
    }
}
