//! What a new user meets in the first ten minutes: the mistakes they make get answers that say
//! what went wrong, and nothing they run by accident creates state.

use serde_json::Value;

use crate::api_helpers::spawn_resource_api;
use crate::helpers::{
    APP_ID, APP_SECRET, CLIENT_ID, CLIENT_SECRET, PASSWORD, TestDb, USERNAME, auth_settings, cli,
    cli_with_password, new_kek, spawn_auth_server, spawn_auth_server_with,
};

#[tokio::test]
async fn a_json_body_sent_with_curls_default_form_type_gets_a_hint_not_a_missing_grant_type() {
    let (server, _db) = spawn_auth_server().await;

    // `curl -d '{…}'` without `-H 'Content-Type: application/json'`.
    let response = server
        .http
        .post(server.url("/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            r#"{{"grant_type":"client_credentials","client_id":"{CLIENT_ID}","client_secret":"{CLIENT_SECRET}"}}"#
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("Content-Type: application/json"),
        "{description}"
    );
    assert!(!description.contains(CLIENT_SECRET), "never echo the body");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_an_allow_header_in_each_services_error_shape() {
    let (server, _db) = spawn_auth_server().await;
    let api = spawn_resource_api(&server.address).await;

    let token = server
        .http
        .get(server.url("/auth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 405);
    assert_eq!(token.headers()["allow"], "POST");
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let jwks = server
        .http
        .delete(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 405);
    assert_eq!(jwks.headers()["allow"], "GET");
    assert_eq!(jwks.headers()["content-type"], "application/problem+json");

    let player = api
        .http
        .patch(api.url("/players/squadnumber/10"))
        .send()
        .await
        .unwrap();
    assert_eq!(player.status(), 405);
    assert_eq!(player.headers()["allow"], "DELETE, GET, PUT");
    let body: Value = player.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    assert!(body["requestId"].is_string());
}

#[tokio::test]
async fn the_token_endpoint_answers_cors_preflights_only_for_configured_origins() {
    let (server, _db) = spawn_auth_server_with(|settings| {
        settings.cors_allowed_origins = vec!["http://localhost:9001".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/auth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };

    let allowed = preflight("http://localhost:9001").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:9001"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let token = server
        .http
        .post(server.url("/auth/token"))
        .header("origin", "http://localhost:9001")
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    assert_eq!(
        token.headers()["access-control-allow-origin"],
        "http://localhost:9001"
    );

    let other = preflight("http://evil.example").await.unwrap();
    assert_ne!(other.status(), 200);
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "no CORS grant for an origin not configured"
    );
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .http
        .post(server.url("/auth/token"))
        .header("origin", "http://localhost:9001")
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn read_only_and_admin_commands_refuse_to_create_a_database_where_there_is_none() {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    let elsewhere = std::env::temp_dir().join(format!("cli-{}", uuid::Uuid::new_v4().simple()));
    let file = elsewhere.join("data/auth-server.sqlite");
    settings.database_url = format!("sqlite://{}?mode=rwc", file.display());

    for args in [
        &["clients", "list"][..],
        &["users", "list"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["clients", "remove", "nobody"],
    ] {
        let err = cli(&settings, args).await.unwrap_err();
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(err.contains("data/auth-server.sqlite"), "{args:?}: {err}");
    }
    assert!(
        !elsewhere.exists(),
        "nothing was created: not a file, not a folder, not a key"
    );
}

#[tokio::test]
async fn listed_tables_line_up_however_long_the_values() {
    let (server, _db) = spawn_auth_server().await;
    let long_id = "a-client-with-a-rather-long-identifier-for-reporting";
    cli(
        &server.settings,
        &[
            "clients",
            "add",
            "--id",
            long_id,
            "--scope",
            "x",
            "--audience",
            "y",
        ],
    )
    .await
    .unwrap();

    for listing in [
        cli(&server.settings, &["clients", "list"]).await.unwrap(),
        cli(&server.settings, &["users", "list"]).await.unwrap(),
        cli(&server.settings, &["keys", "list"]).await.unwrap(),
    ] {
        let lines: Vec<&str> = listing.lines().collect();
        assert!(lines.len() >= 2, "{listing}");
        // Every column of every row starts where the header's column starts.
        let header = lines[0];
        let starts: Vec<usize> = header
            .char_indices()
            .filter(|(i, c)| *c != ' ' && *i >= 2 && &header[i - 2..*i] == "  ")
            .map(|(i, _)| i)
            .collect();
        assert!(!starts.is_empty(), "{listing}");
        for row in &lines[1..] {
            for start in &starts {
                let lines_up = row.len() > *start
                    && &row[start - 2..*start] == "  "
                    && !row[*start..].starts_with(' ');
                assert!(lines_up, "a column does not line up:\n{listing}");
            }
        }
    }
}

#[tokio::test]
async fn keys_list_prints_times_as_utc_dates() {
    let (server, _db) = spawn_auth_server().await;

    let listing = cli(&server.settings, &["keys", "list"]).await.unwrap();

    let row = listing.lines().nth(1).unwrap();
    let year = chrono_year();
    assert!(row.contains(&format!("{year}-")), "{listing}");
    assert!(row.contains('T') && row.contains('Z'), "{listing}");
}

fn chrono_year() -> i64 {
    // Whole years since 1970, good enough to find this year in an RFC 3339 date.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    1970 + secs / 31_556_952
}

#[tokio::test]
async fn keys_rotate_says_when_other_instances_see_the_key() {
    let (server, _db) = spawn_auth_server().await;

    let scheduled = cli(&server.settings, &["keys", "rotate"]).await.unwrap();
    assert!(
        scheduled.contains(&format!(
            "every instance publishes it within {} s",
            server.settings.key_refresh_secs
        )),
        "{scheduled}"
    );
    assert!(!scheduled.contains("published now"), "{scheduled}");
}

#[tokio::test]
async fn users_add_without_a_password_says_none_was_given() {
    let (server, _db) = spawn_auth_server().await;

    let empty = cli_with_password(&server.settings, &["users", "add", "diego"], "")
        .await
        .unwrap_err();
    assert!(empty.contains("no password given"), "{empty}");
    let short = cli_with_password(&server.settings, &["users", "add", "diego"], "short")
        .await
        .unwrap_err();
    assert!(short.contains("at least 8 characters"), "{short}");
}

#[tokio::test]
async fn the_generated_development_key_file_can_be_given_back_as_key_encryption_key_file() {
    let db = TestDb::new().await;
    if !db.url.starts_with("sqlite") {
        return; // the development key file exists only beside a SQLite database
    }
    let mut settings = auth_settings(&db, &new_kek());
    settings.key_encryption_key = None;
    let first = crate::helpers::start_with_own_issuer(settings.clone()).await;
    let token = first.access_token().await;
    first.stop().await;
    let file = service_kit::db::sqlite_path(&db.url)
        .unwrap()
        .with_extension("kek");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.trim().len(), 44, "base64 of 32 bytes: {text:?}");

    // The same file named in the configuration opens the same sealed keys (a wrong key would
    // stop the start): the first server's signing key is still the one published.
    settings.key_encryption_key_file = Some(file);
    let second = crate::helpers::start_with_own_issuer(settings).await;
    let kid = crate::helpers::decode_unverified(&token).0["kid"].clone();
    let jwks = second.get_json("/.well-known/jwks.json").await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid),
        "{jwks}"
    );
    let again = second.access_token().await;
    assert_eq!(crate::helpers::decode_unverified(&again).0["kid"], kid);
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_makes_the_chains_access_tokens_inactive_too() {
    let (server, _db) = spawn_auth_server().await;
    let login: Value = server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "password"),
                ("username", USERNAME),
                ("password", PASSWORD),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let first_refresh = login["refresh_token"].as_str().unwrap();
    let refreshed: Value = server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first_refresh),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let introspect = async |token: &str| -> Value {
        server
            .http
            .post(server.url("/auth/introspect"))
            .basic_auth(APP_ID, Some(APP_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    for token in [&login["access_token"], &refreshed["access_token"]] {
        assert_eq!(introspect(token.as_str().unwrap()).await["active"], true);
    }

    // A thief (or the client) presents the spent refresh token again.
    let reuse = server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first_refresh),
            ],
        )
        .await;
    assert_eq!(reuse.status(), 400);

    for token in [&login["access_token"], &refreshed["access_token"]] {
        let answer = introspect(token.as_str().unwrap()).await;
        assert_eq!(answer, serde_json::json!({"active": false}), "{token}");
    }
}
