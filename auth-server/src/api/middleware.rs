//! Around every request: a request id (honoured from `X-Request-Id` when sane, else generated)
//! on the response and in the logs, a body-size limit, JSON bodies for framework errors, and
//! one summary event and metrics sample per request.

use std::time::{Duration, Instant};

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::types::ToJSON;
use tracing::Instrument;

use super::errors::{OAuthError, OAuthErrorCode, Problem};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How long a client may take to send its (small) request body.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

pub struct RequestContext {
    pub max_body_bytes: usize,
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestContextEndpoint {
            inner,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

pub struct RequestContextEndpoint<E> {
    inner: E,
    max_body_bytes: usize,
}

fn sane_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A bounded label for metrics: the known route, never the raw path.
fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/auth/token" => "token",
        "/.well-known/jwks.json" => "jwks",
        "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => {
            "metadata"
        }
        "/health/live" | "/health/ready" => "health",
        "/metrics" => "metrics",
        p if p.starts_with("/docs") || p == "/openapi.json" => "docs",
        _ => "other",
    }
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let started = Instant::now();
        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v))
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", %method, path, request_id);

        let response = REQUEST_ID
            .scope(request_id.clone(), async {
                if let Err(too_large) = limit_body(&mut req, self.max_body_bytes).await {
                    return too_large;
                }
                match self.inner.call(req).await {
                    Ok(resp) => resp.into_response(),
                    Err(err) => framework_error(&path, err),
                }
            })
            .instrument(span.clone())
            .await;

        let mut response = response;
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let status = response.status();
        let elapsed = started.elapsed();
        let endpoint = endpoint_label(&path);
        metrics::counter!("http_requests_total", "endpoint" => endpoint, "status" => status.as_str().to_owned()).increment(1);
        metrics::histogram!("http_request_duration_seconds", "endpoint" => endpoint)
            .record(elapsed.as_secs_f64());
        span.in_scope(|| {
            if status.is_server_error() {
                tracing::error!(
                    status = status.as_u16(),
                    latency_us = elapsed.as_micros() as u64,
                    "request failed"
                );
            } else {
                tracing::debug!(
                    status = status.as_u16(),
                    latency_us = elapsed.as_micros() as u64,
                    "request served"
                );
            }
        });
        Ok(response)
    }
}

/// Reads a request body of at most `max` bytes; a larger one is answered with 413 at once.
async fn limit_body(req: &mut Request, max: usize) -> std::result::Result<(), Response> {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    ) {
        return Ok(());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let path = req.uri().path().to_owned();
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(&path, max));
    }
    let read = tokio::time::timeout(BODY_DEADLINE, req.take_body().into_bytes_limit(max));
    match read.await {
        Ok(Ok(bytes)) => {
            req.set_body(bytes);
            Ok(())
        }
        Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => Err(too_large(&path, max)),
        Err(_elapsed) => Err(error_response(
            &path,
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
        Ok(Err(_)) => Err(error_response(
            &path,
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )),
    }
}

fn too_large(path: &str, max: usize) -> Response {
    error_response(
        path,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body exceeds {max} bytes"),
    )
}

/// Errors poem raised before (or instead of) a handler: unknown route, wrong method, panics.
fn framework_error(path: &str, err: poem::Error) -> Response {
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        return error_response(path, status, "internal server error");
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource",
        _ => "the request is not valid",
    };
    error_response(path, status, detail)
}

/// OAuth endpoints answer in the RFC 6749 shape; everything else with a problem body.
pub fn error_response(path: &str, status: StatusCode, detail: &str) -> Response {
    if path.starts_with("/auth/") {
        let body = if status.is_server_error() {
            OAuthError::server_error()
        } else {
            OAuthError::new(OAuthErrorCode::InvalidRequest, detail)
        };
        let json = body.to_json().unwrap_or_default();
        Response::builder()
            .status(status)
            .content_type("application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::PRAGMA, "no-cache")
            .body(json.to_string())
    } else {
        let problem = Problem::new(
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error"),
            Some(detail.to_owned()),
        );
        let json = problem.to_json().unwrap_or_default();
        Response::builder()
            .status(status)
            .content_type("application/problem+json")
            .body(json.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_honoured() {
        assert!(sane_request_id("abc-123_x.y"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("has space"));
        assert!(!sane_request_id("inject\r\nheader"));
        assert!(!sane_request_id(&"a".repeat(65)));
    }
}
