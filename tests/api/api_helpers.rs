//! Test support for the players API: the real resource-api on a free port with a fresh
//! database, trusting a given issuer, and the requests the tests make of it.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use resource_api::{Application, Settings};
use serde_json::{Value, json};

use crate::helpers::TestDb;

/// A running resource-api.
pub struct ResourceApi {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub http: reqwest::Client,
    _db: TestDb,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for ResourceApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Settings for a test instance: port 0, a fresh database, `issuer` trusted.
pub fn api_settings(db: &TestDb, issuer: &str) -> Settings {
    Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        issuer: issuer.to_owned(),
        database_url: db.url.clone(),
        ..Settings::default()
    }
}

/// The players API trusting `issuer`, ready (database up, issuer keys fetched).
pub async fn spawn_resource_api(issuer: &str) -> ResourceApi {
    spawn_resource_api_with(issuer, |_| {}).await
}

pub async fn spawn_resource_api_with(
    issuer: &str,
    configure: impl FnOnce(&mut Settings),
) -> ResourceApi {
    let db = TestDb::new().await;
    let mut settings = api_settings(&db, issuer);
    configure(&mut settings);
    let api = start(settings, db).await;
    api.wait_until_ready().await;
    api
}

/// Starts without waiting for readiness (the issuer may be down).
pub async fn start(settings: Settings, db: TestDb) -> ResourceApi {
    let app = Application::build(settings)
        .await
        .expect("resource-api starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(app.run_until_stopped());
    ResourceApi {
        address,
        http: reqwest::Client::new(),
        _db: db,
        task,
    }
}

impl ResourceApi {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn wait_until_ready(&self) {
        for _ in 0..200 {
            let ready = self.http.get(self.url("/health/ready")).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the resource-api did not become ready");
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// A JSON body sent with an optional bearer token.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    pub async fn create(&self, token: Option<&str>, player: &Value) -> Response {
        self.send(Method::POST, "/players", token, Some(player))
            .await
    }

    pub async fn replace(&self, token: Option<&str>, number: u32, player: &Value) -> Response {
        let path = format!("/players/squadnumber/{number}");
        self.send(Method::PUT, &path, token, Some(player)).await
    }

    pub async fn delete(&self, token: Option<&str>, number: u32) -> Response {
        let path = format!("/players/squadnumber/{number}");
        self.send(Method::DELETE, &path, token, None).await
    }

    /// The player with `number`, or `None` on 404.
    pub async fn player(&self, number: u32) -> Option<Value> {
        let response = self.get(&format!("/players/squadnumber/{number}")).await;
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            404 => None,
            other => panic!("GET squad number {number}: {other}"),
        }
    }
}

/// A new player for a free squad number (the seeded squad leaves 27–99 free).
pub fn new_player(number: u32) -> Value {
    json!({
        "firstName": "Paulo",
        "middleName": null,
        "lastName": "Díaz",
        "dateOfBirth": "1994-09-23",
        "squadNumber": number,
        "position": "Centre-Back",
        "abbrPosition": "CB",
        "team": "River Plate",
        "league": "Copa de la Liga",
        "starting11": false
    })
}

/// The `WWW-Authenticate` header of a response.
pub fn challenge(response: &Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// What the players API's challenges end with: its RFC 9728 metadata at the default
/// `public_url` (`http://localhost:9001`), which these tests leave as it is.
pub const RESOURCE_METADATA: &str =
    r#", resource_metadata="http://localhost:9001/.well-known/oauth-protected-resource""#;

/// Asserts an RFC 6750 `invalid_token` answer.
pub async fn assert_invalid_token(response: Response, why: &str) {
    assert_eq!(response.status(), 401, "{why}");
    let challenge = challenge(&response);
    assert!(
        challenge.starts_with(
            r#"Bearer realm="players-api", error="invalid_token", error_description=""#
        ),
        "{why}: {challenge}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{why}");
}
