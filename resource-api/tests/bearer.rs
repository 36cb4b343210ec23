//! The players API's protected writes against token-verifier's in-process test issuer: the
//! RFC 6750 answers for the tokens a team's tests need, without a running auth-server.

use std::time::Duration;

use resource_api::{Application, Settings};
use serde_json::{Value, json};
use token_verifier::test_issuer::{TestIssuer, TokenBuilder};

const AUDIENCE: &str = "players-api";

/// What every challenge ends with: the API's RFC 9728 metadata at its public URL (the default
/// `public_url`, `http://localhost:9001`, as these tests leave it).
const METADATA: &str =
    r#", resource_metadata="http://localhost:9001/.well-known/oauth-protected-resource""#;

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
        &format!(r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired"{METADATA}"#),
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
        &format!(r#"Bearer realm="players-api", error="invalid_token", error_description="token is not meant for this audience"{METADATA}"#),
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
        &format!(r#"Bearer realm="players-api", error="insufficient_scope", scope="players:write"{METADATA}"#),
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
        format!(r#"Bearer realm="players-api"{METADATA}"#)
    );
    assert!(!api.has_player(64).await);
}

#[tokio::test]
async fn the_metadata_a_challenge_names_says_which_issuer_protects_the_api() {
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;

    let response = api.get("/.well-known/oauth-protected-resource").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["resource"], "http://localhost:9001");
    assert_eq!(document["authorization_servers"], json!([issuer.url()]));
    assert_eq!(document["scopes_supported"], json!(["players:write"]));
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    assert_eq!(document["dpop_bound_access_tokens_required"], false);
    assert!(
        document["dpop_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|algs| algs.contains(&json!("ES256")))
    );
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
        &format!(r#"Bearer realm="players-api", error="invalid_token", error_description="token signing key is unknown"{METADATA}"#),
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

/// Every log line of this test process, as JSON lines (one subscriber for the whole process:
/// tests tell their lines apart by what they wrote).
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let writer = move || LogWriter(logs);
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .with_max_level(tracing::Level::INFO)
            .try_init();
        logs
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_write_by_an_exchanged_token_logs_who_acted_for_whom() {
    let logs = captured_logs();
    let issuer = TestIssuer::start().await;
    let api = spawn_api(&issuer).await;
    let token = writer(&issuer)
        .subject("lionel")
        .claim(
            "act",
            json!({"sub": "players-api", "act": {"sub": "mobile-bff"}}),
        )
        .mint();

    let response = api.create(Some(&token), 67).await;

    assert_eq!(response.status(), 201);
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line: Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["squad_number"] == 67)
        .unwrap_or_else(|| panic!("no audit line for squad number 67 in:\n{text}"));
    assert_eq!(line["fields"]["sub"], "lionel");
    assert_eq!(line["fields"]["actor"], "players-api");
    assert_eq!(line["fields"]["actor_chain"], "players-api < mobile-bff");
    assert!(!text.contains(&token), "the token is never logged");

    let malformed = writer(&issuer).claim("act", json!("players-api")).mint();
    assert_refused(
        api.create(Some(&malformed), 68).await,
        401,
        &format!(
            r#"Bearer realm="players-api", error="invalid_token", error_description="token claim act is invalid"{METADATA}"#
        ),
        "invalid_token",
    )
    .await;
}
