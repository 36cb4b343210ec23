//! Around every request, the same in every service: a request id (the caller's `X-Request-Id`
//! when it is plain, else a new one) on the response and on every log line of the request;
//! limits on the body (size, and time to arrive); the service's own JSON error body for what
//! poem answers by itself (unknown route, wrong method — with `Allow` — unreadable path) and for
//! panics, which become a 500 that says nothing but the request id; one summary event and one
//! metrics sample per request.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument as _;

/// The header that carries the request id both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest caller-chosen request id kept.
const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The caller's id if it is 1 to 128 characters of `A-Z a-z 0-9 - _ . :` (it ends up in
    /// logs and headers), else a new random one.
    pub fn from_header(value: Option<&str>) -> Self {
        match value {
            Some(id) if is_plain(id) => Self(Arc::from(id)),
            _ => Self::generate(),
        }
    }

    pub fn generate() -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
        Self(Arc::from(&*id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_plain(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The id of the request this task serves, if it serves one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.as_str().to_owned()).ok()
}

/// How a service writes the errors answered outside its operations.
pub trait ErrorBody: Send + Sync + 'static {
    /// The response for `status` on a request to `path`; `detail` is short, fixed text that is
    /// safe to send. A 5xx must say nothing but that it is an internal error and the request
    /// id ([`current_request_id`] gives it).
    fn response(&self, path: &str, status: StatusCode, detail: &str) -> Response;
}

/// How request bodies are limited.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Larger bodies are refused with 413.
    pub max_bytes: usize,
    /// A body that has not fully arrived this long after the headers is refused with 408.
    pub deadline: Duration,
    /// Read every body (within the limits) before the operation runs, so operations see it
    /// whole; when false the operation reads it with [`read_body`] when it chooses (after it
    /// checked the caller, say).
    pub read_first: bool,
}

impl BodyLimits {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            deadline: Duration::from_secs(10),
            read_first: true,
        }
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge(usize),
    TimedOut,
    Unreadable,
}

impl BodyError {
    pub fn status(self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable => StatusCode::BAD_REQUEST,
        }
    }

    pub fn detail(self) -> String {
        match self {
            Self::TooLarge(max) => format!("the request body exceeds {max} bytes"),
            Self::TimedOut => "the request body did not arrive in time".into(),
            Self::Unreadable => "the request body could not be read".into(),
        }
    }
}

/// Reads a body of at most `limits.max_bytes` bytes within `limits.deadline`; a declared
/// `Content-Length` over the limit is refused before reading.
pub async fn read_body(
    headers: &poem::http::HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<Vec<u8>, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(BodyError::TooLarge(limits.max_bytes));
    }
    let mut read = Box::pin(body.into_bytes_limit(limits.max_bytes));
    // A small body has usually arrived with the headers: no timer for it.
    let read = match futures_util::FutureExt::now_or_never(&mut read) {
        Some(done) => Ok(done),
        None => tokio::time::timeout(limits.deadline, read).await,
    };
    match read {
        Ok(Ok(bytes)) => Ok(bytes.to_vec()),
        Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => {
            Err(BodyError::TooLarge(limits.max_bytes))
        }
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Err(_elapsed) => Err(BodyError::TimedOut),
    }
}

/// The methods each route answers, for the `Allow` header of a 405.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<Segment>, Vec<Method>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

impl AllowedMethods {
    /// The routes of a poem-openapi API (`T::meta()`), path templates with `:name` or `{name}`.
    pub fn of_openapi<T: poem_openapi::OpenApi>() -> Self {
        let mut allowed = Self::default();
        for api in T::meta() {
            for path in api.paths {
                let methods = path.operations.iter().map(|op| op.method.clone()).collect();
                allowed = allowed.with(&path.path, methods);
            }
        }
        allowed
    }

    /// Adds (or extends) a route.
    pub fn with(mut self, template: &str, methods: Vec<Method>) -> Self {
        let segments = parse_template(template);
        match self.routes.iter_mut().find(|(s, _)| *s == segments) {
            Some((_, known)) => {
                for method in methods {
                    if !known.contains(&method) {
                        known.push(method);
                    }
                }
            }
            None => self.routes.push((segments, methods)),
        }
        self
    }

    /// The `Allow` value for `path`, if a route matches it.
    pub fn allow_header(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (_, methods) = self.routes.iter().find(|(segments, _)| {
            segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(s, p)| match s {
                    Segment::Literal(l) => l == p,
                    Segment::Parameter => !p.is_empty(),
                })
        })?;
        let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        names.sort_unstable();
        Some(names.join(", "))
    }
}

fn parse_template(template: &str) -> Vec<Segment> {
    template
        .trim_end_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with(':') || (s.starts_with('{') && s.ends_with('}')) {
                Segment::Parameter
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// The request-context middleware; build it once per app.
pub struct RequestContext<B> {
    errors: Arc<B>,
    limits: BodyLimits,
    allowed: Arc<AllowedMethods>,
    spans: bool,
}

impl<B: ErrorBody> RequestContext<B> {
    pub fn new(errors: B, limits: BodyLimits, allowed: AllowedMethods) -> Self {
        // Install the recorder before the first request records anything.
        crate::telemetry::metrics_handle();
        Self {
            errors: Arc::new(errors),
            limits,
            allowed: Arc::new(allowed),
            spans: crate::telemetry::traces_enabled(),
        }
    }

    /// Opens a tracing span per request, continuing the caller's W3C `traceparent`; on by
    /// default exactly when traces are exported ([`crate::telemetry::init_telemetry`]).
    /// Without it, log lines still carry the request id, and a request costs no span.
    pub fn with_spans(mut self, spans: bool) -> Self {
        self.spans = spans;
        self
    }
}

impl<E: Endpoint, B: ErrorBody> Middleware<E> for RequestContext<B> {
    type Output = RequestContextEndpoint<E, B>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestContextEndpoint {
            inner,
            errors: Arc::clone(&self.errors),
            limits: self.limits,
            allowed: Arc::clone(&self.allowed),
            spans: self.spans,
        }
    }
}

pub struct RequestContextEndpoint<E, B> {
    inner: E,
    errors: Arc<B>,
    limits: BodyLimits,
    allowed: Arc<AllowedMethods>,
    spans: bool,
}

impl<E: Endpoint, B: ErrorBody> Endpoint for RequestContextEndpoint<E, B> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let id = RequestId::from_header(
            req.headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok()),
        );
        let method = req.method().clone();
        let uri = req.uri().clone();
        let span = self
            .spans
            .then(|| request_span(&id, &method, uri.path(), req.headers()));
        let served = async {
            let path = uri.path();
            let mut response = match &span {
                Some(span) => self.serve(req, path).instrument(span.clone()).await,
                None => self.serve(req, path).await,
            };
            if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            let status = response.status();
            let operation = response.data::<OperationId>().map_or("other", |op| op.0);
            if let Some(span) = &span {
                close_request_span(span, &method, operation, status);
            }
            let elapsed = started.elapsed();
            record_request(method_label(&method), operation, status, elapsed);
            let latency_us = elapsed.as_micros() as u64;
            // Inside the request's scope: the log line carries its request id.
            if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(status = status.as_u16(), %method, path, operation, latency_us, "request failed");
            } else {
                // Successes and refusals are counted in the metrics and logged at debug, so a
                // flood of requests is not a flood of log lines.
                tracing::debug!(status = status.as_u16(), %method, path, operation, latency_us, "request served");
            }
            response
        };
        Ok(REQUEST_ID.scope(id.clone(), served).await)
    }
}

impl<E: Endpoint, B: ErrorBody> RequestContextEndpoint<E, B> {
    async fn serve(&self, mut req: Request, path: &str) -> Response {
        if self.limits.read_first && has_body(req.method()) {
            let body = req.take_body();
            match read_body(req.headers(), body, self.limits).await {
                Ok(bytes) => req.set_body(bytes),
                Err(err) => return self.errors.response(path, err.status(), &err.detail()),
            }
        }
        match AssertUnwindSafe(self.inner.call(req)).catch_unwind().await {
            Ok(Ok(response)) => response.into_response(),
            Ok(Err(err)) => self.framework_error(path, err),
            Err(_panic) => {
                // The panic message was printed by the panic hook; the answer says nothing.
                tracing::error!("the handler panicked");
                self.errors.response(
                    path,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error",
                )
            }
        }
    }

    /// Errors poem raised before, or instead of, an operation.
    fn framework_error(&self, path: &str, err: poem::Error) -> Response {
        let status = err.status();
        if status.is_server_error() {
            tracing::error!(error = %err, "unhandled error");
            return self.errors.response(path, status, "internal server error");
        }
        let detail = match status {
            StatusCode::NOT_FOUND => "no such resource",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource",
            StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type",
            StatusCode::FORBIDDEN => "the request is not allowed",
            _ => "the request is not valid",
        };
        let mut response = self.errors.response(path, status, detail);
        if status == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self.allowed.allow_header(path)
            && let Ok(value) = HeaderValue::from_str(&allow)
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        response
    }
}

/// The span of one request (made only when traces are exported): a server span, child of the
/// caller's `traceparent` when it sent a valid one. Its attributes: the request id, method and
/// path (no query string, no headers: nothing secret); the operation and status are added when
/// it ends.
fn request_span(
    id: &RequestId,
    method: &Method,
    path: &str,
    headers: &poem::http::HeaderMap,
) -> tracing::Span {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let span = tracing::info_span!(
        "request",
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        request_id = id.as_str(),
        http.request.method = %method,
        url.path = path,
        operation = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers));
    // Without a valid traceparent the extracted context is empty and the span starts a trace.
    let _ = span.set_parent(parent);
    span
}

fn close_request_span(span: &tracing::Span, method: &Method, operation: &str, status: StatusCode) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    // The span has started by now, so `otel.name` would no longer rename it.
    span.context()
        .span()
        .update_name(format!("{method} {operation}"));
    span.record("operation", operation);
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// The metric handles of one (method, operation, status).
type RequestMetrics = std::collections::HashMap<
    (&'static str, &'static str, u16),
    (metrics::Counter, metrics::Histogram),
>;

thread_local! {
    /// The handles each thread has recorded with: looking a labelled metric up in the registry
    /// costs a lock and allocations per request.
    static HANDLES: std::cell::RefCell<RequestMetrics> = std::cell::RefCell::default();
}

/// One served request: `http_requests_total` and `http_request_duration_seconds`.
fn record_request(
    method: &'static str,
    operation: &'static str,
    status: StatusCode,
    elapsed: Duration,
) {
    HANDLES.with_borrow_mut(|handles| {
        let (counter, histogram) = handles
            .entry((method, operation, status.as_u16()))
            .or_insert_with(|| {
                (
                    metrics::counter!(
                        "http_requests_total",
                        "method" => method,
                        "operation" => operation,
                        "status" => status.as_str().to_owned()
                    ),
                    metrics::histogram!("http_request_duration_seconds", "operation" => operation),
                )
            });
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    });
}

fn has_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    )
}

/// A fixed set, so a made-up method cannot create a new metrics series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// CORS for browser clients of `origins` (e.g. Swagger UI on another port in development).
/// Apply it only when `origins` is not empty (`with_if`): poem's `Cors` with no origin allows
/// every origin. A request from an origin not listed is refused with 403.
pub fn cors(origins: &[String]) -> poem::middleware::Cors {
    poem::middleware::Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            "authorization",
            "content-type",
            "dpop",
            "x-requested-with",
            REQUEST_ID_HEADER,
        ])
        .expose_headers([
            REQUEST_ID_HEADER,
            "www-authenticate",
            "retry-after",
            "dpop-nonce",
        ])
        .max_age(600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_incoming_request_id_is_kept_and_anything_else_replaced() {
        assert_eq!(
            RequestId::from_header(Some("req-42.a:b_c")).as_str(),
            "req-42.a:b_c"
        );
        let long = "x".repeat(129);
        for odd in ["", "has space", "new\nline", "<script>", long.as_str()] {
            let id = RequestId::from_header(Some(odd));
            assert_ne!(id.as_str(), odd);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        }
        assert_eq!(
            RequestId::from_header(Some(&"y".repeat(128)))
                .as_str()
                .len(),
            128
        );
    }

    #[tokio::test]
    async fn the_current_request_id_is_known_inside_the_request_only() {
        assert_eq!(current_request_id(), None);
        let seen = REQUEST_ID
            .scope(RequestId::from_header(Some("abc")), async {
                current_request_id()
            })
            .await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }

    #[test]
    fn allowed_methods_match_templates_with_parameters() {
        let allowed = AllowedMethods::default()
            .with("/players", vec![Method::GET, Method::POST])
            .with("/players/squadnumber/:n", vec![Method::GET])
            .with(
                "/players/squadnumber/{n}",
                vec![Method::PUT, Method::DELETE],
            );
        assert_eq!(allowed.allow_header("/players").unwrap(), "GET, POST");
        assert_eq!(
            allowed.allow_header("/players/squadnumber/10").unwrap(),
            "DELETE, GET, PUT"
        );
        assert_eq!(allowed.allow_header("/players/squadnumber/"), None);
        assert_eq!(allowed.allow_header("/nope"), None);
    }
}
