//! Upgrading in place: a database made by an earlier schema keeps working after the server
//! migrates it at start.

use sea_orm::ConnectionTrait as _;
use sea_orm_migration::MigratorTrait as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::helpers::{
    APP_ID, APP_SECRET, AuthServer, TestDb, assert_oauth_error_code, auth_settings, new_kek,
    start_with_own_issuer,
};

/// The migrations before `m20261206_000008_refresh_chains`.
const BEFORE_REFRESH_CHAINS: u32 = 6;

/// The migrations before `m20261206_000010_token_exchange`.
const BEFORE_TOKEN_EXCHANGE: u32 = 9;

/// The migrations before `m20261207_000011_apis`.
const BEFORE_APIS: u32 = 10;

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Inserts a refresh token as the earlier schema stored it.
async fn insert_old_refresh_token(
    conn: &sea_orm::DatabaseConnection,
    token: &str,
    chain: &str,
    revoked: bool,
) {
    let now = auth_server::clock::now_secs();
    let revoked_at = if revoked {
        now.to_string()
    } else {
        "NULL".into()
    };
    conn.execute_unprepared(&format!(
        "INSERT INTO refresh_tokens (token_hash, chain_id, client_id, username, scope, \
             audience, created_at, expires_at, chain_expires_at, used_at, revoked_at, \
             access_jti, access_expires_at) VALUES ('{}', '{chain}', 'squad-app', 'lionel', \
             'players:read players:write', 'players-api', {now}, {}, {}, NULL, {revoked_at}, \
             NULL, NULL)",
        hash(token),
        now + 3600,
        now + 86_400,
    ))
    .await
    .expect("insert an old refresh token");
}

async fn refresh(server: &AuthServer, token: &str) -> reqwest::Response {
    server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
}

#[tokio::test]
async fn refresh_tokens_from_before_refresh_chains_keep_working_after_the_upgrade() {
    // Arrange: a database at the previous schema, holding a live chain and a revoked one.
    let db = TestDb::new().await;
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    auth_server::storage::migrations::Migrator::up(&conn, Some(BEFORE_REFRESH_CHAINS))
        .await
        .expect("the previous schema");
    insert_old_refresh_token(
        &conn,
        "live-token",
        "11111111-1111-1111-1111-111111111111",
        false,
    )
    .await;
    insert_old_refresh_token(
        &conn,
        "dead-token",
        "22222222-2222-2222-2222-222222222222",
        true,
    )
    .await;
    // What the old reuse race left behind: a revoked chain whose newest token escaped.
    insert_old_refresh_token(
        &conn,
        "escaped-token",
        "22222222-2222-2222-2222-222222222222",
        false,
    )
    .await;
    conn.close().await.ok();

    // Act: the new server migrates it at start.
    let server = start_with_own_issuer(auth_settings(&db, &new_kek())).await;

    // Assert: the live token rotates, and its chain still detects reuse; the revoked one stays so.
    let rotated = refresh(&server, "live-token").await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["scope"], "players:read players:write");
    assert_oauth_error_code(refresh(&server, "live-token").await, 400, "invalid_grant").await;
    let next = rotated["refresh_token"].as_str().unwrap().to_owned();
    // The replay revoked the chain.
    assert_oauth_error_code(refresh(&server, &next).await, 400, "invalid_grant").await;
    assert_oauth_error_code(refresh(&server, "dead-token").await, 400, "invalid_grant").await;
    // A chain with a revoked token is revoked as a whole.
    assert_oauth_error_code(
        refresh(&server, "escaped-token").await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_client_stored_by_the_previous_release_keeps_its_secret_after_the_upgrade() {
    let db = TestDb::new().await;
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    auth_server::storage::migrations::Migrator::up(&conn, Some(BEFORE_REFRESH_CHAINS))
        .await
        .unwrap();
    let hash = auth_server::crypto::hash_secret("legacy-secret-0123").unwrap();
    conn.execute_unprepared(&format!(
        "INSERT INTO clients (client_id, secret_hash, scopes, audiences, grant_types, \
         created_at, updated_at) VALUES ('legacy', '{hash}', 'players:read', 'players-api', \
         'client_credentials', 1, 1)"
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();

    let server: AuthServer = start_with_own_issuer(auth_settings(&db, &new_kek())).await;

    let response = server
        .token_basic(
            "legacy",
            "legacy-secret-0123",
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let listed = crate::helpers::cli(&server.settings, &["clients", "list"])
        .await
        .unwrap();
    let line = listed.lines().find(|l| l.starts_with("legacy")).unwrap();
    assert!(line.contains("client_secret"), "{listed}");
}

#[tokio::test]
async fn clients_from_before_token_exchange_keep_their_grants_and_may_exchange_nothing() {
    let db = TestDb::new().await;
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    auth_server::storage::migrations::Migrator::up(&conn, Some(BEFORE_TOKEN_EXCHANGE))
        .await
        .unwrap();
    let hash = auth_server::crypto::hash_secret("legacy-secret-0123").unwrap();
    conn.execute_unprepared(&format!(
        "INSERT INTO clients (client_id, secret_hash, scopes, audiences, grant_types, \
         created_at, updated_at) VALUES ('legacy', '{hash}', 'players:write', \
         'players-api scouting-api', 'client_credentials', 1, 1)"
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();

    let server: AuthServer = start_with_own_issuer(auth_settings(&db, &new_kek())).await;

    let token = server
        .access_token_for(
            "legacy",
            "legacy-secret-0123",
            &[("audience", "scouting-api")],
        )
        .await;
    let subject = server.access_token().await;
    let refused = server
        .exchange(("legacy", "legacy-secret-0123"), &subject, &[])
        .await;
    assert_oauth_error_code(refused, 400, "unauthorized_client").await;
    let claims = crate::helpers::decode_unverified(&token).1;
    assert_eq!(claims["aud"], "scouting-api");
    assert_eq!(claims["scope"], "players:write");
    let listed = crate::helpers::cli(&server.settings, &["clients", "list"])
        .await
        .unwrap();
    let line = listed.lines().find(|l| l.starts_with("legacy")).unwrap();
    assert!(line.contains("client_credentials"), "{listed}");
}

/// A client stored before APIs were registered entries: its audiences become APIs with
/// undeclared scopes, its tokens carry what they carried, and declaring an API's scopes
/// narrows them from then on.
#[tokio::test]
async fn audiences_from_before_apis_become_apis_and_nothing_changes_until_declared() {
    let db = TestDb::new().await;
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    auth_server::storage::migrations::Migrator::up(&conn, Some(BEFORE_APIS))
        .await
        .unwrap();
    let hash = auth_server::crypto::hash_secret("legacy-secret-0123").unwrap();
    conn.execute_unprepared(&format!(
        "INSERT INTO clients (client_id, secret_hash, scopes, audiences, grant_types, \
         created_at, updated_at) VALUES ('legacy', '{hash}', 'players:write scouting:read', \
         'players-api scouting-api', 'client_credentials', 1, 1)"
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();

    let server: AuthServer = start_with_own_issuer(auth_settings(&db, &new_kek())).await;
    let scope_of = async |audience: &str| {
        let token = server
            .access_token_for("legacy", "legacy-secret-0123", &[("audience", audience)])
            .await;
        let claims = crate::helpers::decode_unverified(&token).1;
        assert_eq!(claims["aud"], audience);
        claims["scope"].as_str().unwrap().to_owned()
    };
    assert_eq!(scope_of("players-api").await, "players:write scouting:read");
    assert_eq!(
        scope_of("scouting-api").await,
        "players:write scouting:read"
    );

    let listed = crate::helpers::cli(&server.settings, &["apis", "list"])
        .await
        .unwrap();
    for api in ["players-api", "scouting-api"] {
        let line = listed.lines().find(|l| l.starts_with(api)).unwrap();
        assert!(line.contains("(undeclared)"), "{listed}");
    }

    crate::helpers::cli(
        &server.settings,
        &["apis", "update", "scouting-api", "--scope", "scouting:read"],
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    while scope_of("scouting-api").await != "scouting:read" {
        assert!(started.elapsed() < crate::helpers::sync_bound(&server.settings));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // players-api is still undeclared: it keeps every scope but scouting-api's.
    assert_eq!(scope_of("players-api").await, "players:write");
}
