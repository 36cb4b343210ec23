//! The request context over a real socket: a panic becomes the service's JSON error with the
//! request id, a wrong method a 405 with `Allow`, and every answer carries the request id.

use poem::http::{Method, StatusCode};
use poem::{EndpointExt, Response, Route, get, handler};
use service_kit::request::{
    AllowedMethods, BodyLimits, ErrorBody, RequestContext, current_request_id,
};
use service_kit::serve::Listening;

/// A service's error shape, as a test would have it.
struct TestErrors;

impl ErrorBody for TestErrors {
    fn response(&self, path: &str, status: StatusCode, detail: &str) -> Response {
        let body = serde_json::json!({
            "status": status.as_u16(),
            "detail": detail,
            "path": path,
            "requestId": current_request_id(),
        });
        Response::builder()
            .status(status)
            .content_type("application/json")
            .body(body.to_string())
    }
}

#[handler]
fn fine() -> &'static str {
    "fine"
}

#[handler]
fn boom() -> &'static str {
    panic!("a bug in a handler")
}

async fn serve() -> String {
    let app = Route::new()
        .at("/fine", get(fine))
        .at("/boom", get(boom))
        .with(RequestContext::new(
            TestErrors,
            BodyLimits::new(1024),
            AllowedMethods::default()
                .with("/fine", vec![Method::GET])
                .with("/boom", vec![Method::GET]),
        ));
    let listening = Listening::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", listening.port());
    tokio::spawn(listening.serve(app, std::future::pending()));
    address
}

#[tokio::test]
async fn a_panicking_handler_answers_the_services_500_with_only_the_request_id() {
    let address = serve().await;

    let response = reqwest::Client::new()
        .get(format!("{address}/boom"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], "trace-me-42");
    assert_eq!(body["detail"], "internal server error");
    assert!(!body.to_string().contains("a bug in a handler"));

    // The server lives on.
    let after = reqwest::get(format!("{address}/fine")).await.unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_and_an_unknown_path_404_in_the_services_shape() {
    let address = serve().await;
    let http = reqwest::Client::new();

    let wrong = http.post(format!("{address}/fine")).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "GET");
    let generated = wrong.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["requestId"], generated.as_str());

    let missing = http.get(format!("{address}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("allow").is_none());
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["detail"], "no such resource");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_the_handler_runs() {
    let address = serve().await;

    let response = reqwest::Client::new()
        .post(format!("{address}/fine"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "the request body exceeds 1024 bytes");
}
