//! The JSON request body of writes, read by us rather than by poem-openapi: only after the
//! bearer token was checked (a caller without a valid token cannot make us wait for or hold a
//! body), within the size and time limits, and so that a bad field is a 422 that names it.

use poem::{Body, Request, RequestBody, http::HeaderMap, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};
use service_kit::request::{BodyLimits, read_body};

use super::{dto::PlayerInputDto, problem::Problem};

/// The limits a write's body is read within; given to the routes as data.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub BodyLimits);

/// A player in JSON as sent, not yet read. Documented in the spec as a `PlayerInput`.
pub struct PlayerBody {
    headers: HeaderMap,
    body: Option<Body>,
    limits: BodyLimits,
}

/// Why the body could not even be read as JSON.
#[derive(Debug)]
pub enum BodyError {
    NotJson,
    TooLarge(usize),
    TimedOut,
    Malformed(String),
}

impl BodyError {
    pub fn problem(&self) -> Problem {
        match self {
            BodyError::NotJson => Problem::new(
                415,
                "unsupported_media_type",
                "the body must be application/json",
            ),
            BodyError::TooLarge(limit) => Problem::new(
                413,
                "payload_too_large",
                format!("the body must be at most {limit} bytes"),
            ),
            BodyError::TimedOut => Problem::new(
                408,
                "request_timeout",
                "the request body did not arrive in time",
            ),
            BodyError::Malformed(reason) => Problem::new(
                400,
                "malformed_json",
                format!("the body is not valid JSON: {reason}"),
            ),
        }
    }
}

impl PlayerBody {
    /// Reads and parses the body (once).
    pub async fn json(mut self) -> Result<serde_json::Value, BodyError> {
        let is_json = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<mime::Mime>().ok())
            .is_some_and(|mime| {
                mime.type_() == mime::APPLICATION
                    && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
            });
        if !is_json {
            return Err(BodyError::NotJson);
        }
        let body = self
            .body
            .take()
            .ok_or_else(|| BodyError::Malformed("no body".into()))?;
        let bytes = read_body(&self.headers, body, self.limits)
            .await
            .map_err(|err| match err {
                service_kit::request::BodyError::TooLarge(max) => BodyError::TooLarge(max),
                service_kit::request::BodyError::TimedOut => BodyError::TimedOut,
                service_kit::request::BodyError::Unreadable => {
                    BodyError::Malformed("the body could not be read".into())
                }
            })?;
        serde_json::from_slice(&bytes).map_err(|err| BodyError::Malformed(err.to_string()))
    }
}

impl<'a> ApiExtractor<'a> for PlayerBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        PlayerInputDto::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The player; an `id` is ignored (the server makes ids)."),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: PlayerInputDto::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let limits = request
            .data::<BodyLimit>()
            .map_or_else(|| BodyLimits::new(64 * 1024), |limit| limit.0);
        Ok(Self {
            headers: request.headers().clone(),
            body: body.take().ok(),
            limits,
        })
    }
}
