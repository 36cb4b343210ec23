//! The error bodies on the wire: RFC 6749 §5.2 for the OAuth endpoints (`/auth/…`), RFC 9457
//! problem details elsewhere. A 500 carries only "internal server error" and the request id.

use poem::Response;
use poem::http::{StatusCode, header};
use poem_openapi::types::ToJSON;
use poem_openapi::{Enum, Object};
use service_kit::request::{ErrorBody, current_request_id};

/// RFC 6749 §5.2 error codes (and `server_error`, RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    /// RFC 9449 §5: a DPoP proof missing or refused.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server's nonce (sent in `DPoP-Nonce`).
    UseDpopNonce,
    /// Too many failed attempts (429), or a dependency is down (503); both with `Retry-After`.
    TemporarilyUnavailable,
    ServerError,
}

/// An OAuth 2.0 error response (RFC 6749 §5.2).
#[derive(Debug, Clone, Object)]
#[oai(rename = "OAuthError")]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    pub error_description: Option<String>,
    /// Present on `server_error`: quote it when reporting the problem.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

impl OAuthError {
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: Some(description.into()),
            request_id: None,
        }
    }

    pub fn server_error() -> Self {
        Self {
            error: OAuthErrorCode::ServerError,
            error_description: Some("internal server error".into()),
            request_id: current_request_id(),
        }
    }
}

/// A problem details body (RFC 9457), served as `application/problem+json`.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: u16, title: &str, detail: Option<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: title.into(),
            status,
            detail,
            request_id: current_request_id(),
        }
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "Internal Server Error",
            Some("internal server error".into()),
        )
    }
}

/// The auth-server's shape for errors answered outside its operations.
pub struct ErrorShapes;

impl ErrorBody for ErrorShapes {
    fn response(&self, path: &str, status: StatusCode, detail: &str) -> Response {
        if path.starts_with("/auth/") {
            let body = if status.is_server_error() {
                OAuthError::server_error()
            } else {
                OAuthError::new(OAuthErrorCode::InvalidRequest, detail)
            };
            Response::builder()
                .status(status)
                .content_type("application/json")
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::PRAGMA, "no-cache")
                .body(body.to_json_string())
        } else {
            let problem = if status.is_server_error() {
                Problem::internal()
            } else {
                Problem::new(
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Error"),
                    Some(detail.to_owned()),
                )
            };
            Response::builder()
                .status(status)
                .content_type("application/problem+json")
                .body(problem.to_json_string())
        }
    }
}
