//! The axum adapter over real sockets: the extractors and the tower layer give the same
//! RFC 6750 answers as the poem scheme, and refuse before a body is read.

#![cfg(feature = "axum")]

mod support;

use std::time::Duration;

use axum::{
    Extension, Json, Router,
    routing::{get, post},
};
use serde_json::{Value, json};
use support::{TestIssuer, valid};
use token_verifier::{
    TokenVerifier, VerifiedClaims,
    axum::{Bearer, BearerLayer, Scope, Scoped},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

struct WritePlayers;
impl Scope for WritePlayers {
    const NAME: &'static str = "players:write";
}

async fn write(caller: Scoped<WritePlayers>, Json(body): Json<Value>) -> Json<Value> {
    Json(json!({"by": caller.subject, "body": body}))
}

async fn whoami(caller: Bearer) -> Result<String, token_verifier::BearerRejection> {
    let claims = caller.require("players:read")?;
    Ok(claims.subject.clone())
}

async fn guarded(Extension(claims): Extension<VerifiedClaims>, body: String) -> String {
    format!("{} sent {body}", claims.client_id)
}

/// An axum app of `verifier` on a loopback port: `/write` (extractor with a scope),
/// `/whoami` (extractor, scope checked in the handler), `/guarded` (the layer).
async fn serve(verifier: TokenVerifier) -> String {
    let guarded_routes = Router::new()
        .route("/guarded", post(guarded))
        .route_layer(BearerLayer::new(verifier.clone()).require_scope("players:write"));
    let app = Router::new()
        .route("/write", post(write))
        .route("/whoami", get(whoami))
        .with_state(verifier)
        .merge(guarded_routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn app() -> (TestIssuer, String) {
    let issuer = support::issuer().await;
    let address = serve(support::verifier(&issuer).await).await;
    (issuer, address)
}

async fn post_with(address: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{address}{path}"))
        .json(&json!({"squadNumber": 50}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn assert_answer(response: reqwest::Response, status: u16, challenge_is: &str, error: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(challenge(&response), challenge_is);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn a_valid_token_with_the_scope_reaches_the_handler_with_its_claims() {
    let (issuer, address) = app().await;

    let response = post_with(&address, "/write", Some(&valid(&issuer).mint())).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"by": "foobarbaz", "body": {"squadNumber": 50}})
    );
}

#[tokio::test]
async fn every_refusal_is_the_rfc_6750_answer_of_the_poem_scheme() {
    let (issuer, address) = app().await;
    let expired = valid(&issuer).expired().mint();
    let elsewhere = valid(&issuer).audience("billing-api").mint();
    let reader = valid(&issuer).scope("players:read").mint();

    for path in ["/write", "/guarded"] {
        assert_answer(
            post_with(&address, path, None).await,
            401,
            r#"Bearer realm="players-api""#,
            "unauthorized",
        )
        .await;
        assert_answer(
            post_with(&address, path, Some(&expired)).await,
            401,
            r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired""#,
            "invalid_token",
        )
        .await;
        assert_answer(
            post_with(&address, path, Some(&elsewhere)).await,
            401,
            r#"Bearer realm="players-api", error="invalid_token", error_description="token is not meant for this audience""#,
            "invalid_token",
        )
        .await;
        assert_answer(
            post_with(&address, path, Some(&reader)).await,
            403,
            r#"Bearer realm="players-api", error="insufficient_scope", scope="players:write""#,
            "insufficient_scope",
        )
        .await;
    }
}

#[tokio::test]
async fn the_layer_hands_the_verified_claims_to_the_handler() {
    let (issuer, address) = app().await;
    let token = valid(&issuer).client_id("squad-app").mint();

    let response = post_with(&address, "/guarded", Some(&token)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        r#"squad-app sent {"squadNumber":50}"#
    );
}

#[tokio::test]
async fn a_handler_can_require_a_scope_itself() {
    let (issuer, address) = app().await;
    let client = reqwest::Client::new();
    let whoami = |token: String| {
        client
            .get(format!("{address}/whoami"))
            .bearer_auth(token)
            .send()
    };

    let reader = whoami(valid(&issuer).scope("players:read").mint())
        .await
        .unwrap();
    assert_eq!(reader.status(), 200);
    assert_eq!(reader.text().await.unwrap(), "foobarbaz");

    let writer = whoami(valid(&issuer).mint()).await.unwrap();
    assert_eq!(writer.status(), 403);
    assert_eq!(
        challenge(&writer),
        r#"Bearer realm="players-api", error="insufficient_scope", scope="players:read""#
    );
}

/// Sends the head of a POST announcing a body that never comes; returns the status line.
async fn status_line_without_sending_the_body(address: &str, path: &str) -> String {
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_before_its_body_is_read() {
    let (_issuer, address) = app().await;

    for path in ["/write", "/guarded"] {
        assert_eq!(
            status_line_without_sending_the_body(&address, path).await,
            "HTTP/1.1 401 Unauthorized",
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_layer_works_with_any_tower_service_whose_body_is_made_from_a_string() {
    let issuer = support::issuer().await;
    let verifier = support::verifier(&issuer).await;
    let inner = tower::service_fn(|request: http::Request<()>| async move {
        let claims = request.extensions().get::<VerifiedClaims>().cloned();
        Ok::<_, std::convert::Infallible>(http::Response::new(
            claims.map(|claims| claims.subject).unwrap_or_default(),
        ))
    });
    let service = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(verifier))
        .service(inner);
    let request = |token: Option<String>| {
        let mut builder = http::Request::builder().uri("/");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(()).unwrap()
    };

    let response = service
        .clone()
        .oneshot(request(Some(valid(&issuer).mint())))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "foobarbaz");

    let response = service.oneshot(request(None)).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.body(),
        r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
    );
}
