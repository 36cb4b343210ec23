//! `POST /auth/token`: every way a client authenticates, and every error row of the contract.

use serde_json::{Value, json};

use crate::helpers::{
    AuthServer, CLIENT_ID, CLIENT_SECRET, decode_unverified, spawn_auth_server,
    spawn_auth_server_with, urlencode,
};

async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status, "status for {error}");
    let headers = response.headers().clone();
    assert_eq!(
        headers["cache-control"], "no-store",
        "{error} must not be cached"
    );
    assert_eq!(headers["pragma"], "no-cache");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

async fn assert_token_response(response: reqwest::Response) -> (Value, Value) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let (header, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    (body, claims)
}

fn post(server: &AuthServer) -> reqwest::RequestBuilder {
    server.http.post(server.url("/auth/token"))
}

#[tokio::test]
async fn client_secret_basic_gets_an_rfc9068_token() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .token_basic(
            CLIENT_ID,
            CLIENT_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;

    let (body, claims) = assert_token_response(response).await;
    assert_eq!(body["scope"], "players:write");
    assert_eq!(claims["iss"], server.address);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(
        claims["aud"], "players-api",
        "the first audience is the default"
    );
    assert_eq!(claims["scope"], "players:write");
    for time in ["iat", "nbf", "exp"] {
        assert!(
            claims[time].is_i64(),
            "{time} must be a whole number: {claims}"
        );
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    let (server, _db) = spawn_auth_server_with(|s| {
        let mut odd = s.clients[0].clone();
        odd.client_id = "svc:reports".into();
        odd.client_secret = Some("p@ss:w/rd+100% é".into());
        s.clients.push(odd);
    })
    .await;

    // reqwest's basic_auth does not encode; helpers::token_basic does, as RFC 6749 §2.3.1 asks.
    let response = server
        .token_basic(
            "svc:reports",
            "p@ss:w/rd+100% é",
            &[("grant_type", "client_credentials")],
        )
        .await;

    let (_, claims) = assert_token_response(response).await;
    assert_eq!(claims["client_id"], "svc:reports");
}

#[tokio::test]
async fn client_secret_post_in_a_form_body_gets_a_token() {
    let (server, _db) = spawn_auth_server().await;

    let response = post(&server)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();

    let (_, claims) = assert_token_response(response).await;
    assert_eq!(claims["sub"], CLIENT_ID);
}

#[tokio::test]
async fn a_json_body_with_the_same_fields_gets_a_token() {
    let (server, _db) = spawn_auth_server().await;

    let response = post(&server)
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }))
        .send()
        .await
        .unwrap();

    let (_, claims) = assert_token_response(response).await;
    assert_eq!(claims["sub"], CLIENT_ID);
}

#[tokio::test]
async fn scope_selects_a_subset_and_resource_or_audience_selects_the_audience() {
    let (server, _db) = spawn_auth_server().await;

    let by_scope = server
        .token_basic(
            CLIENT_ID,
            CLIENT_SECRET,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "players:write"),
            ],
        )
        .await;
    let by_resource = server
        .token_basic(
            CLIENT_ID,
            CLIENT_SECRET,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "scouting-api"),
            ],
        )
        .await;
    let by_audience = server
        .token_basic(
            CLIENT_ID,
            CLIENT_SECRET,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "scouting-api"),
            ],
        )
        .await;

    assert_eq!(
        assert_token_response(by_scope).await.1["scope"],
        "players:write"
    );
    assert_eq!(
        assert_token_response(by_resource).await.1["aud"],
        "scouting-api"
    );
    assert_eq!(
        assert_token_response(by_audience).await.1["aud"],
        "scouting-api"
    );
}

#[tokio::test]
async fn a_scope_the_client_lacks_is_invalid_scope() {
    let (server, _db) = spawn_auth_server().await;

    for scope in ["players:admin", "players:write players:admin", "bad\"scope"] {
        let response = server
            .token_basic(
                CLIENT_ID,
                CLIENT_SECRET,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        assert_oauth_error(response, 400, "invalid_scope").await;
    }
}

#[tokio::test]
async fn an_audience_the_client_lacks_is_invalid_target() {
    let (server, _db) = spawn_auth_server().await;

    for extra in [
        [("resource", "billing-api"), ("audience", "")],
        [("audience", "billing-api"), ("scope", "")],
        [("resource", "players-api"), ("audience", "scouting-api")],
    ] {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(&extra);
        let response = server.token_basic(CLIENT_ID, CLIENT_SECRET, &form).await;
        assert_oauth_error(response, 400, "invalid_target").await;
    }
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_with_a_basic_challenge() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .token_basic(
            CLIENT_ID,
            "not-the-secret",
            &[("grant_type", "client_credentials")],
        )
        .await;

    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="auth-server""#
    );
    let body = assert_oauth_error(response, 401, "invalid_client").await;
    assert!(!body.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn an_unknown_client_and_a_wrong_secret_get_the_same_answer() {
    let (server, _db) = spawn_auth_server().await;

    let unknown = server
        .token_basic(
            "nobody",
            CLIENT_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;
    let unknown = assert_oauth_error(unknown, 401, "invalid_client").await;
    let wrong = server
        .token_basic(CLIENT_ID, "wrong", &[("grant_type", "client_credentials")])
        .await;
    let wrong = assert_oauth_error(wrong, 401, "invalid_client").await;

    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn a_wrong_secret_in_the_body_is_invalid_client() {
    let (server, _db) = spawn_auth_server().await;

    let response = post(&server)
        .json(&json!({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"}))
        .send()
        .await
        .unwrap();

    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn no_client_authentication_is_invalid_client() {
    let (server, _db) = spawn_auth_server().await;

    let response = post(&server)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="auth-server""#
    );
    assert_oauth_error(response, 401, "invalid_client").await;

    let id_only = post(&server)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(id_only, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_malformed_authorization_header_is_invalid_client_not_a_fallback() {
    let (server, _db) = spawn_auth_server().await;

    for value in ["Basic !!!notbase64", "Bearer abc", "Basic Zm9v"] {
        let response = post(&server)
            .header("authorization", value)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 401, "invalid_client").await;
    }
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_invalid_request() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .token_basic(
            CLIENT_ID,
            CLIENT_SECRET,
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;

    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn missing_repeated_and_malformed_parameters_are_invalid_request() {
    let (server, _db) = spawn_auth_server().await;
    let auth = format!("{}:{}", urlencode(CLIENT_ID), urlencode(CLIENT_SECRET));
    let basic = format!("Basic {}", base64_std(&auth));

    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "application/x-www-form-urlencoded",
            "missing grant_type",
            b"scope=players:write".to_vec(),
            "grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "empty grant_type",
            b"grant_type=".to_vec(),
            "grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "repeated scope",
            b"grant_type=client_credentials&scope=a&scope=b".to_vec(),
            "scope",
        ),
        (
            "application/x-www-form-urlencoded",
            "repeated grant_type",
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
            "grant_type",
        ),
        (
            "application/json",
            "not JSON",
            b"{grant_type: client_credentials".to_vec(),
            "malformed",
        ),
        (
            "application/json",
            "wrong JSON type",
            br#"{"grant_type":"client_credentials","scope":["a"]}"#.to_vec(),
            "malformed",
        ),
        (
            "application/json",
            "JSON array",
            b"[]".to_vec(),
            "malformed",
        ),
        (
            "text/plain",
            "unsupported content type",
            b"grant_type=client_credentials".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "application/x-www-form-urlencoded",
            "invalid UTF-8",
            b"grant_type=client_credentials&scope=%FF\xfe".to_vec(),
            "scope",
        ),
    ];
    for (content_type, case, body, named) in cases {
        let response = post(&server)
            .header("authorization", &basic)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let error = assert_oauth_error(response, 400, "invalid_request").await;
        assert_eq!(status, 400, "{case}");
        let description = error["error_description"].as_str().unwrap();
        assert!(description.contains(named), "{case}: {description}");
    }

    let no_body = post(&server)
        .header("authorization", &basic)
        .send()
        .await
        .unwrap();
    assert_oauth_error(no_body, 400, "invalid_request").await;
}

fn base64_std(value: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(value)
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_in_the_oauth_shape() {
    let (server, _db) = spawn_auth_server().await;

    let huge = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(100_000)
    );
    let response = post(&server)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();

    assert_oauth_error(response, 413, "invalid_request").await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_too() {
    let (server, _db) = spawn_auth_server().await;

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b'a'; 1024])).collect();
    let response = post(&server)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .unwrap();

    assert_oauth_error(response, 413, "invalid_request").await;
}

fn futures_stream(
    items: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    tokio_stream::iter(items)
}

#[tokio::test]
async fn an_unsupported_grant_type_is_unsupported_grant_type() {
    let (server, _db) = spawn_auth_server().await;

    for grant in [
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:device_code",
        "implicit",
    ] {
        let response = server
            .token_basic(CLIENT_ID, CLIENT_SECRET, &[("grant_type", grant)])
            .await;
        assert_oauth_error(response, 400, "unsupported_grant_type").await;
    }
}

#[tokio::test]
async fn a_client_not_allowed_the_grant_is_unauthorized_client() {
    let (server, _db) = spawn_auth_server_with(|s| {
        let mut password_only = s.clients[0].clone();
        password_only.client_id = "first-party-app".into();
        password_only.grant_types = vec!["password".into()];
        s.clients.push(password_only);
    })
    .await;

    let response = server
        .token_basic(
            "first-party-app",
            CLIENT_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;

    assert_oauth_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn a_request_id_is_on_every_response_and_a_sane_incoming_one_is_kept() {
    let (server, _db) = spawn_auth_server().await;

    let kept = post(&server)
        .header("x-request-id", "trace-abc.123")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-abc.123");

    let replaced = server
        .http
        .get(server.url("/health/live"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_a_problem_body() {
    let (server, _db) = spawn_auth_server().await;

    let missing = server.http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert!(body["request_id"].is_string());

    let wrong_method = server
        .http
        .get(server.url("/auth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn the_verified_secret_cache_can_be_disabled_and_tokens_still_issue() {
    let (server, _db) = spawn_auth_server_with(|s| s.verified_secret_cache = false).await;

    for _ in 0..2 {
        let response = server
            .token_basic(
                CLIENT_ID,
                CLIENT_SECRET,
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_token_response(response).await;
    }
    let wrong = server
        .token_basic(CLIENT_ID, "nope", &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(wrong, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_in_the_oauth_shape() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, _db) = spawn_auth_server().await;
    let address = server.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();

    let head = format!(
        "POST /auth/token HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        socket.read_to_end(&mut answer),
    )
    .await;

    assert!(read.is_ok(), "the server must answer, not wait for ever");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{answer}"
    );
}
