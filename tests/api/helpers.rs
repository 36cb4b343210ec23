//! Test support: a fresh database per test (a temporary SQLite file, or a new PostgreSQL
//! database when `TEST_DATABASE_URL` is set) and the real auth-server on a free port.

use std::path::PathBuf;

use auth_server::Settings;
use auth_server::config::{BootstrapClient, BootstrapUser};
use base64::Engine as _;
use serde_json::Value;
use tokio::sync::oneshot;

/// The development client every spawned auth-server knows.
pub const CLIENT_ID: &str = "foobarbaz";
pub const CLIENT_SECRET: &str = "dev-secret-change-me";
/// A client that may only read: a valid token without `players:write`.
pub const READER_ID: &str = "reader";
pub const READER_SECRET: &str = "reader-secret";
/// A first-party app allowed the password and refresh_token grants.
pub const APP_ID: &str = "squad-app";
pub const APP_SECRET: &str = "squad-app-secret";
/// A user of the password grant.
/// RFC 8693: the token-exchange grant, and the type of an access token.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub const USERNAME: &str = "lionel";
pub const PASSWORD: &str = "campeones-2022";

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub async fn new() -> Self {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if admin_url.starts_with("postgres") => {
                let name = format!("test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(admin_url.as_str())
                    .await
                    .expect("TEST_DATABASE_URL must reach PostgreSQL");
                use sea_orm::ConnectionTrait as _;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                TestDb {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
            _ => {
                let dir =
                    std::env::temp_dir().join(format!("e2e-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).unwrap();
                TestDb {
                    url: format!("sqlite://{}/db.sqlite?mode=rwc", dir.display()),
                    cleanup: Cleanup::Sqlite(dir),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: do the async work on a thread of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        use sea_orm::ConnectionTrait as _;
                        if let Ok(admin) = sea_orm::Database::connect(admin_url.as_str()).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                    Ok::<_, std::io::Error>(())
                })
                .join();
            }
        }
    }
}

fn bootstrap(id: &str, secret: &str, scopes: &[&str], audiences: &[&str]) -> BootstrapClient {
    BootstrapClient {
        client_id: id.into(),
        client_secret: Some(secret.into()),
        client_secret_file: None,
        client_secret_hash: None,
        client_secret_hash_file: None,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        audiences: audiences.iter().map(|s| s.to_string()).collect(),
        grant_types: vec!["client_credentials".into()],
        ..BootstrapClient::default()
    }
}

/// Settings for a test server on `db`: port 0, the dev, reader and first-party app clients, one
/// password-grant user, and a
/// key-encryption key (PostgreSQL needs one; on SQLite it is kept beside the file otherwise).
pub fn auth_settings(db: &TestDb, kek: &str) -> Settings {
    Settings {
        // The test clients and user use the published development secrets.
        dev: true,
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        key_encryption_key: Some(kek.into()),
        clients: vec![
            bootstrap(
                CLIENT_ID,
                CLIENT_SECRET,
                &["players:write"],
                &["players-api", "scouting-api"],
            ),
            bootstrap(
                READER_ID,
                READER_SECRET,
                &["players:read"],
                &["players-api"],
            ),
            BootstrapClient {
                grant_types: vec!["password".into(), "refresh_token".into()],
                ..bootstrap(
                    APP_ID,
                    APP_SECRET,
                    &["players:read", "players:write", "squad:admin"],
                    &["players-api"],
                )
            },
        ],
        users: vec![BootstrapUser {
            username: USERNAME.into(),
            password: Some(PASSWORD.into()),
            password_file: None,
            password_hash: None,
            password_hash_file: None,
            scopes: vec![
                "players:read".into(),
                "players:write".into(),
                "profile".into(),
            ],
            active: true,
        }],
        ..Settings::default()
    }
}

pub fn new_kek() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand_bytes())
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out
}

/// A running auth-server.
pub struct AuthServer {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl AuthServer {
    /// Starts the server with `settings` as they are (see `start_with_own_issuer`).
    pub async fn start(settings: Settings) -> AuthServer {
        let app = auth_server::Application::build(settings.clone())
            .await
            .expect("auth-server starts");
        let port = app.port();
        let address = format!("http://127.0.0.1:{port}");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        AuthServer {
            address,
            settings,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The Prometheus text at `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// The value of the unlabelled counter `name` at `/metrics` (0 while it does not exist).
    /// The recorder is one per test process: compare a value before and after, never alone.
    pub async fn counter(&self, name: &str) -> u64 {
        let prefix = format!("{name} ");
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .map_or(0, |n| n as u64)
    }

    /// POSTs a form to the token endpoint with HTTP Basic client authentication.
    pub async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url("/auth/token"))
            .basic_auth(urlencode(id), Some(urlencode(secret)))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A token for the dev client (`players:write`, audience `players-api`), or panics.
    pub async fn access_token(&self) -> String {
        self.access_token_for(CLIENT_ID, CLIENT_SECRET, &[]).await
    }

    pub async fn access_token_for(&self, id: &str, secret: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let response = self.token_basic(id, secret, &form).await;
        assert_eq!(response.status(), 200, "token request failed");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// lionel's token for players-api from the first-party app (password grant), with
    /// `players:read players:write`.
    pub async fn user_token(&self) -> String {
        let response = self
            .token_basic(
                APP_ID,
                APP_SECRET,
                &[
                    ("grant_type", "password"),
                    ("username", USERNAME),
                    ("password", PASSWORD),
                    ("scope", "players:read players:write"),
                ],
            )
            .await;
        assert_eq!(response.status(), 200, "lionel's login failed");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A token exchange (RFC 8693) by client `id` of `subject_token`, with `extra` parameters.
    pub async fn exchange(
        &self,
        (id, secret): (&str, &str),
        subject_token: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ];
        form.extend_from_slice(extra);
        self.token_basic(id, secret, &form).await
    }

    /// Revokes `token` (RFC 7009) as client `id`.
    pub async fn revoke(&self, id: &str, secret: &str, token: &str) -> reqwest::Response {
        self.http
            .post(self.url("/auth/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fresh database and an auth-server on it with the dev and reader clients.
pub async fn spawn_auth_server() -> (AuthServer, TestDb) {
    spawn_auth_server_with(|_| {}).await
}

pub async fn spawn_auth_server_with(configure: impl FnOnce(&mut Settings)) -> (AuthServer, TestDb) {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    configure(&mut settings);
    let server = start_with_own_issuer(settings).await;
    (server, db)
}

/// Starts the server on a free port with that port's URL as its issuer (tokens and metadata
/// name the issuer, so it must be known before the server starts).
pub async fn start_with_own_issuer(mut settings: Settings) -> AuthServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
    settings.issuer = format!("http://127.0.0.1:{port}").parse().unwrap();
    AuthServer::start(settings).await
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Decodes a JWT's header and claims without verifying (to inspect what was issued).
pub fn decode_unverified(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts.next().expect("JWT part"))
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    };
    (part(), part())
}

/// Runs an `auth-server` CLI command in-process against `settings`' database; returns stdout.
pub async fn cli(settings: &Settings, args: &[&str]) -> Result<String, String> {
    cli_with_password(settings, args, "").await
}

/// Answers the CLI's password prompt with a fixed password.
struct FixedPassword(String);

impl auth_server::cli::PasswordSource for FixedPassword {
    fn read_password(&mut self, _prompt: &str) -> std::io::Result<String> {
        Ok(self.0.clone())
    }
}

/// Like `cli`, typing `password` at the password prompt.
pub async fn cli_with_password(
    settings: &Settings,
    args: &[&str],
    password: &str,
) -> Result<String, String> {
    use clap::Parser as _;
    let dir = std::env::temp_dir().join(format!("cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("auth.toml");
    std::fs::write(&config, toml::to_string(settings).unwrap()).unwrap();
    let mut argv = vec!["auth-server", "--config", config.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = auth_server::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut passwords = FixedPassword(password.to_owned());
    let result = auth_server::cli::run(cli, &mut passwords, &mut out).await;
    let _ = std::fs::remove_dir_all(dir);
    result.map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

/// The secret `clients add` or `clients rotate-secret` printed.
pub fn secret_from(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("client_secret:"))
        .expect("the secret is printed")
        .trim()
        .to_owned()
}

/// Asserts an RFC 6749 error answer: the status and the `error` code.
pub async fn assert_oauth_error_code(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status(), status, "status for {error}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
}

/// How long a client change may take to reach every instance: the sync interval, plus room for
/// one database round trip on a loaded machine.
pub fn sync_bound(settings: &Settings) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(settings.client_sync_interval_ms) + 750)
}

/// Asks `server` for tokens with `id`/`secret` until it refuses them (401 `invalid_client`);
/// panics if that takes longer than `bound`. Returns how long it took.
pub async fn refused_within(
    server: &AuthServer,
    id: &str,
    secret: &str,
    bound: std::time::Duration,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let response = server
            .token_basic(id, secret, &[("grant_type", "client_credentials")])
            .await;
        if response.status() == 401 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client", "{body}");
            return started.elapsed();
        }
        assert_eq!(response.status(), 200, "only 200 until the change arrives");
        assert!(
            started.elapsed() < bound,
            "{id}'s old credentials still worked {bound:?} after the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
