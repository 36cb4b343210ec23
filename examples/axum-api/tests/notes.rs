//! The scouting notes API against the in-process test issuer: what a team's own tests look
//! like when they need tokens but not a running auth-server.

use std::time::Duration;

use axum_api::{Application, Settings, WRITE_SCOPE};
use serde_json::{Value, json};
use token_verifier::test_issuer::TestIssuer;

struct Api {
    address: String,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The API on a free port, trusting `issuer` for `scouting-api`.
async fn spawn_api(issuer: &TestIssuer) -> Api {
    let app = Application::build(Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        issuer: issuer.url().into(),
        ..Settings::default()
    })
    .await
    .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(app.run_until_stopped());
    Api {
        address,
        http: reqwest::Client::new(),
        task,
    }
}

impl Api {
    async fn add(&self, token: Option<&str>, note: &Value) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/notes", self.address)).json(note);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }
}

fn note() -> Value {
    json!({"player": "Enzo Fernández", "text": "Covers the whole pitch; press-resistant."})
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_scout_with_the_write_scope_adds_a_note_that_anyone_reads() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;
    let token = issuer
        .token()
        .audience("scouting-api")
        .scope(WRITE_SCOPE)
        .subject("scout-7")
        .mint();

    let created = api.add(Some(&token), &note()).await;

    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["author"], "scout-7");
    assert_eq!(location, format!("/notes/{}", body["id"]));
    let read: Value = api.get(&location).await.json().await.unwrap();
    assert_eq!(read, body);
    let all: Value = api.get("/notes").await.json().await.unwrap();
    assert_eq!(all, json!([body]));
}

#[tokio::test]
async fn writes_without_a_good_token_get_the_rfc_6750_answers_and_change_nothing() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;
    let token = || issuer.token().audience("scouting-api").scope(WRITE_SCOPE);
    let cases = [
        (None, 401, r#"Bearer realm="scouting-api""#.to_owned()),
        (
            Some(token().expired().mint()),
            401,
            r#"Bearer realm="scouting-api", error="invalid_token", error_description="token has expired""#.to_owned(),
        ),
        (
            Some(token().audience("players-api").mint()),
            401,
            r#"Bearer realm="scouting-api", error="invalid_token", error_description="token is not meant for this audience""#.to_owned(),
        ),
        (
            Some(token().scope("players:write").mint()),
            403,
            r#"Bearer realm="scouting-api", error="insufficient_scope", scope="scouting:write""#.to_owned(),
        ),
    ];

    for (token, status, expected) in cases {
        let response = api.add(token.as_deref(), &note()).await;
        assert_eq!(response.status(), status, "{expected}");
        assert_eq!(challenge(&response), expected);
    }
    let all: Value = api.get("/notes").await.json().await.unwrap();
    assert_eq!(all, json!([]));
}

#[tokio::test]
async fn a_bad_body_with_a_good_token_is_a_json_problem() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;
    let token = issuer
        .token()
        .audience("scouting-api")
        .scope(WRITE_SCOPE)
        .mint();

    let response = api.add(Some(&token), &json!({"player": "Messi"})).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_body");

    let response = api
        .add(Some(&token), &json!({"player": " ", "text": "?"}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_field");
}

#[tokio::test]
async fn the_api_is_ready_once_it_has_the_issuers_keys_and_picks_up_a_rotation() {
    let issuer = TestIssuer::start().await;
    issuer.go_down();
    let api = spawn_api(&issuer).await;
    assert_eq!(api.get("/health/ready").await.status(), 503);
    assert_eq!(
        api.get("/notes").await.status(),
        200,
        "reads need no issuer"
    );

    issuer.come_back();
    let mut ready = false;
    for _ in 0..100 {
        if api.get("/health/ready").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ready once the issuer answers");

    issuer.rotate_now();
    let token = issuer
        .token()
        .audience("scouting-api")
        .scope(WRITE_SCOPE)
        .mint();
    assert_eq!(api.add(Some(&token), &note()).await.status(), 201);
}
