//! The outermost layer of every request: request id, tracing span, one summary line,
//! metrics, and the catch-all that turns poem's plain-text framework errors (unknown route,
//! unparsable path, panics) into our JSON `Problem` — a 500 says nothing but its request id.

use std::time::Instant;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, StatusCode},
};
use poem_openapi::OperationId;
use tracing::Instrument;

use super::problem::{Problem, RequestId};
use crate::telemetry::Metrics;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub struct Observe {
    pub metrics: Metrics,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Metrics,
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let id = RequestId::from_header(
            request
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|value| value.to_str().ok()),
        );
        let method = request.method().clone();
        let span = tracing::info_span!(
            "request",
            request_id = id.as_str(),
            method = %method,
            path = request.uri().path(),
        );
        let started = Instant::now();
        let mut response = id
            .clone()
            .scope(
                async {
                    match self.inner.call(request).await {
                        Ok(response) => response.into_response(),
                        Err(err) => framework_error(err),
                    }
                }
                .instrument(span.clone()),
            )
            .await;

        if let Ok(value) = HeaderValue::from_str(id.as_str()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let status = response.status().as_u16();
        let operation = response
            .data::<OperationId>()
            .map_or("unmatched", |operation| operation.0);
        let elapsed = started.elapsed();
        self.metrics
            .record_request(method.as_str(), operation, status, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        span.in_scope(|| {
            if status == 503 {
                tracing::warn!(status, operation, latency_ms, "request served: not ready");
            } else if status >= 500 {
                tracing::error!(status, operation, latency_ms, "request failed");
            } else if !method.is_safe() && status < 400 {
                tracing::info!(status, operation, latency_ms, "request served");
            } else {
                // Reads and refusals: counted in the metrics, logged only at debug, so a flood
                // of bad requests does not become a flood of log lines.
                tracing::debug!(status, operation, latency_ms, "request served");
            }
        });
        Ok(response)
    }
}

/// The catch-all for errors raised outside our operations' own responses.
fn framework_error(err: poem::Error) -> Response {
    let status = err.status();
    let problem = if status.is_server_error() {
        tracing::error!(error = %err, "unexpected error");
        Problem::internal()
    } else {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource".to_owned()),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "method not allowed here".to_owned())
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is too large".into()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "unsupported content type".into())
            }
            _ => ("bad_request", truncate(&err.to_string(), 300)),
        };
        Problem::new(status.as_u16(), code, message)
    };
    problem_response(status, &problem)
}

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::json!({
        "status": problem.status,
        "error": problem.error,
        "message": problem.message,
        "requestId": problem.request_id,
    });
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
