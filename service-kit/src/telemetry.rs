//! Logs and metrics, one design for every service.
//!
//! Logs: `tracing`, filtered by `RUST_LOG` (default: `info`, chatty dependencies at `warn`),
//! written to stderr one event per line: human-readable by default (colour only on a terminal,
//! and never with `NO_COLOR` set), JSON with `LOG_FORMAT=json`.
//!
//! Traces (off unless a service is configured with `otlp_endpoint`): [`init_telemetry`] adds
//! an OpenTelemetry layer to the same subscriber, which exports spans over OTLP (HTTP/protobuf,
//! `opentelemetry-otlp`'s exporter) to `{otlp_endpoint}/v1/traces`. Then every request gets a
//! span (see [`crate::request`]), continuing the caller's W3C `traceparent`, and the services
//! open child spans with [`trace_span!`](crate::trace_span) around their database, argon2id,
//! signing and key fetches. With export off none of these spans is created: a request costs
//! what it cost before traces existed.
//!
//! Metrics: the `metrics` facade with one Prometheus recorder for the process, installed on
//! first use; services record with `metrics::counter!` and friends wherever the event happens,
//! and `GET /metrics` renders [`render_metrics`]. Several services in one process (tests) share
//! the recorder.

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FmtSpan, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Quiet by default where libraries are chatty (sqlx logs every query at info).
pub const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,poem=warn,hyper=warn,reqwest=warn";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT=json` selects JSON; anything else (or nothing) text.
    pub fn from_env() -> Self {
        match std::env::var("LOG_FORMAT").as_deref() {
            Ok(v) if v.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// Whether text logs may carry colour codes: only on a terminal, and never with `NO_COLOR`.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the process's log subscriber; a second call (tests) keeps the first. Every event
/// logged while serving a request carries its request id (`request_id`), with no per-request
/// span to pay for. No trace export: [`init_telemetry`] with `None`.
pub fn init_logging(format: LogFormat) {
    drop(init_telemetry(format, None));
}

/// Where and as what a service exports its spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The OTLP/HTTP collector's base URL (`http://collector:4318`); spans go to
    /// `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// `service.name` of every span, unless `OTEL_SERVICE_NAME` says otherwise.
    pub service_name: &'static str,
}

impl TraceExport {
    /// Export to `endpoint` when one is configured.
    pub fn from_setting(endpoint: Option<&str>, service_name: &'static str) -> Option<Self> {
        let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty())?;
        Some(Self {
            endpoint: endpoint.to_owned(),
            service_name,
        })
    }

    /// The URL spans are posted to.
    pub fn traces_url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        }
    }
}

/// Checks an `otlp_endpoint` setting: unset, empty, or an http(s) URL without a query.
pub fn check_otlp_endpoint(
    key: &str,
    endpoint: Option<&str>,
) -> Result<(), crate::config::ConfigError> {
    let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    match reqwest::Url::parse(endpoint) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Ok(())
        }
        Ok(_) => Err(crate::config::ConfigError::invalid(
            key,
            "must be an http(s) URL without a query (the collector's OTLP/HTTP base URL)",
        )),
        Err(err) => Err(crate::config::ConfigError::invalid(key, err.to_string())),
    }
}

/// Whether spans are exported (set once, by [`init_telemetry`]).
static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans: per-request and child spans are made only then.
#[inline]
pub fn traces_enabled() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// Keeps trace export running; dropping it sends the spans still buffered (at most 5 s).
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            TRACES.store(false, Ordering::Relaxed);
            let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
        }
    }
}

/// Installs the process's log subscriber and, with `traces`, the span exporter beside it;
/// a second call (tests) keeps the first subscriber and exports nothing. An exporter that
/// cannot be built is reported and left out: the service runs without traces.
pub fn init_telemetry(format: LogFormat, traces: Option<TraceExport>) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (provider, failed) = match traces.as_ref().map(tracer_provider) {
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(err)) => (None, Some(err)),
        None => (None, None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(JsonWithRequestId)
            .finish()
            .with(otel_layer(provider.as_ref()))
            .try_init(),
        LogFormat::Text => builder
            .compact()
            .with_ansi(colour())
            .with_timer(TimeAndRequestId(SystemTime))
            .finish()
            .with(otel_layer(provider.as_ref()))
            .try_init(),
    };
    if let Some(err) = failed {
        tracing::error!(error = %err, "cannot export traces; running without them");
    }
    match (installed, provider) {
        (Ok(()), Some(provider)) => {
            TRACES.store(true, Ordering::Relaxed);
            if let Some(traces) = &traces {
                tracing::info!(endpoint = %traces.traces_url(), "exporting traces over OTLP");
            }
            TelemetryGuard {
                provider: Some(provider),
            }
        }
        (_, provider) => {
            if let Some(provider) = provider {
                let _ = provider.shutdown();
            }
            TelemetryGuard::default()
        }
    }
}

/// The layer that turns spans into OpenTelemetry spans, lean: no code locations, targets,
/// thread names or busy/idle times.
fn otel_layer<S>(
    provider: Option<&SdkTracerProvider>,
) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("service-kit"))
            .with_location(false)
            .with_target(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
    })
}

fn tracer_provider(traces: &TraceExport) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces.traces_url())
        .with_http_client(ExportClient::new()?)
        .build()
        .map_err(|err| err.to_string())?;
    let resource = Resource::builder();
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some_and(|v| !v.is_empty()) {
        resource
    } else {
        resource.with_service_name(traces.service_name)
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The exporter's HTTP client: the workspace's reqwest, on a runtime of its own (one thread),
/// because the batch processor exports from a plain thread and its last batch is sent while
/// the service's runtime shuts down.
#[derive(Debug, Clone)]
struct ExportClient {
    client: reqwest::Client,
    runtime: std::sync::Arc<ExportRuntime>,
}

/// Dropped without waiting (dropping a runtime inside another one's task would panic).
#[derive(Debug)]
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl ExportClient {
    fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(|err| format!("cannot start the export thread: {err}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| format!("cannot build the export client: {err}"))?;
        Ok(Self {
            client,
            runtime: std::sync::Arc::new(ExportRuntime(Some(runtime))),
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let runtime = self
            .runtime
            .0
            .as_ref()
            .ok_or("the export thread has stopped")?;
        let sent = runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

/// A span for trace export, or `Span::none()` (nothing allocated) when export is off: the
/// child spans of a request (database, argon2id, signing, key fetches). Same syntax as
/// `tracing::info_span!`; put no secret, token or password in a field.
#[macro_export]
macro_rules! trace_span {
    ($($arg:tt)+) => {
        if $crate::telemetry::traces_enabled() {
            ::tracing::info_span!($($arg)+)
        } else {
            ::tracing::Span::none()
        }
    };
}

/// Text lines: the time, then the request id when the event happens while serving one.
struct TimeAndRequestId<T>(T);

impl<T: FormatTime> FormatTime for TimeAndRequestId<T> {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        self.0.format_time(w)?;
        match crate::request::current_request_id() {
            Some(id) => write!(w, " request_id={id}"),
            None => Ok(()),
        }
    }
}

/// JSON lines: the request id as a field when the event happens while serving one.
struct JsonWithRequestId<F>(F);

impl<S, N, F> FormatEvent<S, N> for JsonWithRequestId<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = crate::request::current_request_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let field = format!("\"request_id\":{},", serde_json::Value::from(id));
        match line.find('{') {
            Some(open) => line.insert_str(open + 1, &field),
            None => line.push_str(&field),
        }
        writer.write_str(&line)
    }
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder is installed; then this handle renders nothing.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        // Histograms keep every sample until upkeep folds them into buckets: without it, memory
        // grows with every request between scrapes (160 KB/s at 20,000 requests/s).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

/// The Prometheus text exposition of every metric recorded in this process.
pub fn render_metrics() -> String {
    metrics_handle().render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_go_to_v1_traces_under_the_configured_endpoint() {
        let at = |endpoint| {
            TraceExport::from_setting(Some(endpoint), "svc")
                .unwrap()
                .traces_url()
        };
        assert_eq!(
            at("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            at("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(at("https://c/otlp/v1/traces"), "https://c/otlp/v1/traces");
        assert_eq!(TraceExport::from_setting(Some("  "), "svc"), None);
        assert_eq!(TraceExport::from_setting(None, "svc"), None);
    }

    #[test]
    fn an_otlp_endpoint_must_be_an_http_url_without_a_query() {
        for fine in [
            None,
            Some(""),
            Some("http://127.0.0.1:4318"),
            Some("https://c/otlp"),
        ] {
            assert!(
                check_otlp_endpoint("otlp_endpoint", fine).is_ok(),
                "{fine:?}"
            );
        }
        for bad in [
            "collector:4318",
            "grpc://c:4317",
            "http://c/?k=v",
            "not a url",
        ] {
            let err = check_otlp_endpoint("otlp_endpoint", Some(bad)).unwrap_err();
            assert!(err.to_string().starts_with("otlp_endpoint: "), "{err}");
        }
    }

    #[test]
    fn with_export_off_a_trace_span_is_no_span_at_all() {
        assert!(!traces_enabled());
        let span = crate::trace_span!("db", otel.name = "SELECT");
        assert!(span.is_none());
    }
}
