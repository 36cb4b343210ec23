//! Logs and metrics. Logs: `tracing`, filtered by `RUST_LOG` (default `info`, chatty
//! dependencies at `warn`). Metrics: a Prometheus registry owned by the application (not a
//! process-wide one, so several instances can share a process, as tests do).

use std::{sync::Arc, time::Duration};

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,poem=warn";

/// Installs the global subscriber; a second call (tests) leaves the first in place.
pub fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer()).try_init(),
        LogFormat::Json => registry.with(fmt::layer().json()).try_init(),
    };
}

/// The application's metrics.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        Self {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// One served request: `http_requests_total` and `http_request_duration_seconds`.
    pub fn record_request(&self, method: &str, operation: &str, status: u16, elapsed: Duration) {
        // A fixed set: a made-up method must not create a new series.
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH" => method,
            _ => "other",
        };
        let labels = vec![
            Label::new("method", method.to_owned()),
            Label::new("operation", operation.to_owned()),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(
                &Key::from_parts("http_requests_total", labels.clone()),
                &METADATA,
            )
            .increment(1);
        let labels = labels.into_iter().take(2).collect::<Vec<_>>();
        self.recorder
            .register_histogram(
                &Key::from_parts("http_request_duration_seconds", labels),
                &METADATA,
            )
            .record(elapsed.as_secs_f64());
    }

    /// Whether the issuer's keys are known (1) or not yet (0).
    pub fn set_issuer_keys_ready(&self, ready: bool) {
        self.recorder
            .register_gauge(&Key::from_name("issuer_keys_ready"), &METADATA)
            .set(if ready { 1.0 } else { 0.0 });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
