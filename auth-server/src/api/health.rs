//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use async_trait::async_trait;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::errors::Problem;

/// What readiness found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyReport {
    /// The database answers.
    pub database: bool,
    /// How long it has not, when it does not.
    pub stale_secs: Option<u64>,
    /// Client credentials may still be issued from memory (`max_stale_secs`).
    pub can_issue_from_memory: bool,
    /// A signing key is loaded and fresh.
    pub signing_key: bool,
}

/// The checks behind `/health/ready`.
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn check(&self) -> ReadyReport;
}

#[derive(Debug, Clone, Object)]
pub struct HealthStatus {
    /// `ok`, or `degraded` while the database is unreachable but client-credentials tokens
    /// are still issued from memory.
    pub status: String,
    /// `ok` or `unreachable` (readiness only).
    #[oai(skip_serializing_if_is_none)]
    pub database: Option<String>,
    /// Seconds since the database last answered, while it is unreachable.
    #[oai(skip_serializing_if_is_none)]
    pub stale_secs: Option<u64>,
}

#[derive(ApiResponse)]
pub enum LiveResponse {
    /// The process is serving requests.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Tokens can be issued: the database answers (`ok`), or has been unreachable for less
    /// than `max_stale_secs` (`degraded`), and a signing key is loaded.
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
    pub readiness: Arc<dyn Readiness>,
}

fn ok() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".into(),
        database: None,
        stale_secs: None,
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
        let report = self.readiness.check().await;
        metrics::gauge!("auth_ready_degraded").set(if report.database { 0.0 } else { 1.0 });
        if !report.database && !report.can_issue_from_memory {
            return unavailable("database unreachable for longer than max_stale_secs");
        }
        if !report.signing_key {
            return unavailable("no active signing key");
        }
        ReadyResponse::Ok(Json(HealthStatus {
            status: if report.database { "ok" } else { "degraded" }.into(),
            database: Some(if report.database { "ok" } else { "unreachable" }.into()),
            stale_secs: report.stale_secs,
        }))
    }

    /// Prometheus metrics.
    #[oai(
        path = "/metrics",
        method = "get",
        tag = "ApiTags::Operations",
        operation_id = "metrics"
    )]
    async fn metrics(&self) -> MetricsResponse {
        MetricsResponse::Ok(PlainText(service_kit::telemetry::render_metrics()))
    }
}
