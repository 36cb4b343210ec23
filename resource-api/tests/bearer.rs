//! The players API's protected writes against token-verifier's in-process test issuer: the
//! RFC 6750 answers for the tokens a team's tests need, without a running auth-server.

use std::time::Duration;

use resource_api::{Application, Settings};
use serde_json::{Value, json};
use token_verifier::test_issuer::{TestIssuer, TokenBuilder};

const AUDIENCE: &str = "players-api";

struct PlayersApi {
    address: String,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for PlayersApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The players API on a free port and a fresh SQLite file, trusting `issuer`, ready.
async fn spawn_api(issuer: &TestIssuer) -> PlayersApi {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        issuer: issuer.url().into(),
        audience: AUDIENCE.into(),
        database_url: format!("sqlite://{}/players.sqlite?mode=rwc", dir.path().display()),
        ..Settings::default()
    })
    .await
    .expect("the players API starts");
    let api = PlayersApi {
        address: format!("http://127.0.0.1:{}", app.port()),
        http: reqwest::Client::new(),
        task: tokio::spawn(app.run_until_stopped()),
        _dir: dir,
    };
    for _ in 0..200 {
        if api.get("/health/ready").await.status() == 200 {
            return api;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the players API did not become ready");
}

impl PlayersApi {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, token: Option<&str>, number: u32) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/players", self.address))
            .json(&player(number));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn has_player(&self, number: u32) -> bool {
        let status = self
            .get(&format!("/players/squadnumber/{number}"))
            .await
            .status();
        status == 200
    }
}

fn player(number: u32) -> Value {
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

/// A players-api token with `players:write`.
fn writer(issuer: &TestIssuer) -> TokenBuilder<'_> {
    issuer
        .token()
        .audience(AUDIENCE)
        .scope("players:write")
        .subject("foobarbaz")
}

async fn assert_refused(response: reqwest::Response, status: u16, challenge: &str, error: &str) {
    assert_eq!(response.status(), status, "{challenge}");
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        challenge
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
}

#[tokio::test]
async fn a_valid_token_with_players_write_creates_a_player() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;

    let response = api.create(Some(&writer(&issuer).mint()), 60).await;

    assert_eq!(response.status(), 201);
    assert!(api.has_player(60).await);
}

#[tokio::test]
async fn an_expired_token_is_401_invalid_token() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;

    let response = api
        .create(Some(&writer(&issuer).expired().mint()), 61)
        .await;

    assert_refused(
        response,
        401,
        r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired""#,
        "invalid_token",
    )
    .await;
    assert!(!api.has_player(61).await);
}

#[tokio::test]
async fn a_token_for_another_audience_is_401_invalid_token() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;

    let token = writer(&issuer).audience("scouting-api").mint();
    let response = api.create(Some(&token), 62).await;

    assert_refused(
        response,
        401,
        r#"Bearer realm="players-api", error="invalid_token", error_description="token is not meant for this audience""#,
        "invalid_token",
    )
    .await;
    assert!(!api.has_player(62).await);
}

#[tokio::test]
async fn a_token_without_players_write_is_403_insufficient_scope() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;

    let token = writer(&issuer).scope("players:read").mint();
    let response = api.create(Some(&token), 63).await;

    assert_refused(
        response,
        403,
        r#"Bearer realm="players-api", error="insufficient_scope", scope="players:write""#,
        "insufficient_scope",
    )
    .await;
    assert!(!api.has_player(63).await);
}

#[tokio::test]
async fn a_write_without_a_token_is_401_with_a_bare_challenge() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;

    let response = api.create(None, 64).await;

    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        r#"Bearer realm="players-api""#
    );
    assert!(!api.has_player(64).await);
}

#[tokio::test]
async fn a_token_signed_by_a_key_the_issuer_never_published_is_401_invalid_token() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;
    let stranger =
        token_verifier::test_issuer::SigningKey::generate(token_verifier::Algorithm::Es256);

    let token = writer(&issuer).signed_by(&stranger).mint();
    let response = api.create(Some(&token), 65).await;

    assert_refused(
        response,
        401,
        r#"Bearer realm="players-api", error="invalid_token", error_description="token signing key is unknown""#,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn an_emergency_rotation_is_trusted_at_once_with_the_default_settings() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;
    assert_eq!(
        api.create(Some(&writer(&issuer).mint()), 66).await.status(),
        201
    );

    issuer.rotate_now();
    let response = api.create(Some(&writer(&issuer).mint()), 67).await;

    assert_eq!(
        response.status(),
        201,
        "the new key, seconds after start-up"
    );
}
