//! The one JSON error shape of this API, and the request id every error body carries.

use std::sync::Arc;

use poem_openapi::Object;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being served: the caller's `x-request-id` if sane, else a new one.
#[derive(Clone, Debug)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Takes a caller's id only if it is short and plain (it ends up in logs and headers).
    pub fn from_header(value: Option<&str>) -> Self {
        match value {
            Some(id)
                if (1..=128).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
            {
                Self(Arc::from(id))
            }
            _ => Self(Arc::from(uuid::Uuid::new_v4().to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Runs `future` with this id as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        REQUEST_ID.scope(self, future).await
    }

    /// The id of the request this task serves.
    pub fn current() -> String {
        REQUEST_ID
            .try_with(|id| id.0.to_string())
            .unwrap_or_else(|_| "none".into())
    }
}

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
            request_id: RequestId::current(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_incoming_request_id_is_kept() {
        let id = RequestId::from_header(Some("req-42.a:b_c"));
        assert_eq!(id.as_str(), "req-42.a:b_c");
    }

    #[test]
    fn an_odd_or_oversized_incoming_request_id_is_replaced() {
        for odd in ["", "has space", "new\nline", "<script>", &"x".repeat(129)] {
            let id = RequestId::from_header(Some(odd));
            assert_ne!(id.as_str(), odd);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        }
    }

    #[tokio::test]
    async fn problems_carry_the_current_request_id() {
        let problem = RequestId::from_header(Some("abc"))
            .scope(async { Problem::new(404, "not_found", "no such player") })
            .await;
        assert_eq!(problem.request_id, "abc");
    }
}
