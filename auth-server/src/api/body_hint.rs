//! A JSON body sent with a form content type (what `curl -d '{…}'` does without
//! `-H 'Content-Type: application/json'`) would parse as a form with one odd parameter and be
//! refused for a missing `grant_type`; this says what actually went wrong.

use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use service_kit::request::ErrorBody as _;

use super::errors::ErrorShapes;

const HINT: &str = "the body is JSON but the Content-Type says \
                    application/x-www-form-urlencoded: send Content-Type: application/json \
                    (curl: -H 'Content-Type: application/json'), or send a form";

pub struct JsonSentAsForm;

impl<E: Endpoint> Middleware<E> for JsonSentAsForm {
    type Output = JsonSentAsFormEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        JsonSentAsFormEndpoint { inner }
    }
}

pub struct JsonSentAsFormEndpoint<E> {
    inner: E,
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl<E: Endpoint> Endpoint for JsonSentAsFormEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        if req.uri().path().starts_with("/auth/") && is_form(&req) {
            // The request context has read the body already: this is a copy of bytes in memory.
            let body = req.take_body().into_bytes().await.unwrap_or_default();
            let looks_like_json = body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{');
            if looks_like_json {
                return Ok(ErrorShapes.response(req.uri().path(), StatusCode::BAD_REQUEST, HINT));
            }
            req.set_body(body);
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}
