//! The one JSON error shape of this API, for its operations and for what the request context
//! answers by itself.

use poem::{Response, http::StatusCode};
use poem_openapi::{Object, types::ToJSON};
use service_kit::request::{ErrorBody, current_request_id};

/// An error: a stable machine-readable `error` code, a human `message`, the offending
/// `field` for validation errors, and the `requestId` to quote when asking for help.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Problem {
    /// HTTP status code.
    pub status: u16,
    /// Machine-readable error code, e.g. `validation_failed`, `invalid_token`.
    pub error: String,
    /// What went wrong, for humans.
    pub message: String,
    /// The request field at fault (validation errors only).
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// The request id, also in the `x-request-id` header.
    pub request_id: String,
}

impl Problem {
    pub fn new(status: u16, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            message: message.into(),
            field: None,
            request_id: current_request_id().unwrap_or_else(|| "none".into()),
        }
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// The only thing a 500 says: the cause goes to the log under the same request id.
    pub fn internal() -> Self {
        Self::new(500, "server_error", "internal server error")
    }
}

/// Unknown routes, wrong methods, bodies too large or too slow, panics: the same `Problem`.
pub struct ErrorShapes;

impl ErrorBody for ErrorShapes {
    fn response(&self, _path: &str, status: StatusCode, detail: &str) -> Response {
        let problem = if status.is_server_error() {
            Problem {
                status: status.as_u16(),
                ..Problem::internal()
            }
        } else {
            let code = match status {
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
                StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                StatusCode::REQUEST_TIMEOUT => "request_timeout",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                _ => "bad_request",
            };
            Problem::new(status.as_u16(), code, detail)
        };
        Response::builder()
            .status(status)
            .content_type("application/json; charset=utf-8")
            .body(problem.to_json_string())
    }
}
