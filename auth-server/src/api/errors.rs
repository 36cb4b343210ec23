//! The error bodies on the wire: RFC 6749 §5.2 for OAuth endpoints, RFC 9457 problem details
//! elsewhere. A 500 carries only "internal server error" and the request id.

use poem_openapi::{Enum, Object};

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
    /// Too many failed attempts (answered with 429 and `Retry-After`).
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
            request_id: super::middleware::current_request_id(),
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
            request_id: super::middleware::current_request_id(),
        }
    }
}
