//! The JSON request body of writes, read by us rather than by poem-openapi: so that the
//! bearer check answers first, and so that a bad field is a 422 that names the field.

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};

use super::{dto::PlayerInputDto, problem::Problem};

/// The largest body a write may send; given to the routes as data.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A player in JSON as sent, not yet judged. Documented in the spec as a `PlayerInput`.
pub struct PlayerBody(Result<serde_json::Value, BodyError>);

/// Why the body could not even be read as JSON.
#[derive(Debug)]
pub enum BodyError {
    NotJson,
    TooLarge(usize),
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
            BodyError::Malformed(reason) => Problem::new(
                400,
                "malformed_json",
                format!("the body is not valid JSON: {reason}"),
            ),
        }
    }
}

impl PlayerBody {
    pub fn json(self) -> Result<serde_json::Value, BodyError> {
        self.0
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
        let limit = request
            .data::<BodyLimit>()
            .map_or(64 * 1024, |limit| limit.0);
        Ok(Self(read_json(request, body, limit).await))
    }
}

async fn read_json(
    request: &Request,
    body: &mut RequestBody,
    limit: usize,
) -> Result<serde_json::Value, BodyError> {
    let is_json = request
        .headers()
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
    let declared_too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64);
    if declared_too_large {
        return Err(BodyError::TooLarge(limit));
    }
    let bytes = body
        .take()
        .map_err(|_| BodyError::Malformed("no body".into()))?
        .into_bytes_limit(limit)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => BodyError::TooLarge(limit),
            other => BodyError::Malformed(other.to_string()),
        })?;
    serde_json::from_slice(&bytes).map_err(|err| BodyError::Malformed(err.to_string()))
}
