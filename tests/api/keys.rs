//! Keys live in the database: restarts keep them, instances share them, rotation follows
//! pending → active → retired, and private keys are sealed at rest.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use sea_orm::{ConnectionTrait, Statement};

use crate::api_helpers::{new_player, spawn_resource_api_with};
use crate::discovery::{verify_independently, verify_with};
use crate::helpers::{
    AuthServer, CLIENT_ID, CLIENT_SECRET, TestDb, auth_settings, cli, decode_unverified, new_kek,
    spawn_auth_server_with, start_with_own_issuer,
};

fn kid_of(token: &str) -> String {
    decode_unverified(token).0["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn jwks(server: &AuthServer) -> JwkSet {
    serde_json::from_value(server.get_json("/.well-known/jwks.json").await).unwrap()
}

#[tokio::test]
async fn a_restart_keeps_the_signing_key_and_old_tokens_still_verify() {
    let db = TestDb::new().await;
    let settings = auth_settings(&db, &new_kek());
    let first = start_with_own_issuer(settings.clone()).await;
    let old_token = first.access_token().await;
    let issuer = first.address.clone();
    first.stop().await;

    let mut again = settings;
    again.bind = issuer.trim_start_matches("http://").parse().unwrap();
    again.issuer = issuer.parse().unwrap();
    let second = AuthServer::start(again).await;
    let new_token = second.access_token().await;

    assert_eq!(kid_of(&old_token), kid_of(&new_token));
    verify_independently(&second, &old_token, "players-api").await;
}

#[tokio::test]
async fn a_restart_with_another_key_encryption_key_refuses_to_start() {
    let db = TestDb::new().await;
    let first = start_with_own_issuer(auth_settings(&db, &new_kek())).await;
    first.stop().await;

    let wrong = auth_settings(&db, &new_kek());
    let result = auth_server::Application::build(wrong).await;

    let err = result
        .err()
        .expect("a wrong key-encryption key must stop start-up")
        .to_string();
    assert!(err.contains("key_encryption_key"), "{err}");
}

#[tokio::test]
async fn private_keys_are_stored_sealed_never_in_clear() {
    let db = TestDb::new().await;
    let server = start_with_own_issuer(auth_settings(&db, &new_kek())).await;
    server.access_token().await;

    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT private_key, public_jwk FROM signing_keys",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let private: String = rows[0].try_get("", "private_key").unwrap();
    let public: String = rows[0].try_get("", "public_jwk").unwrap();
    assert_eq!(private.split('.').count(), 5, "a compact JWE");
    assert!(!private.contains("\"d\""));
    assert!(!public.contains("\"d\""));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn two_instances_on_one_database_share_keys_and_verify_each_others_tokens() {
    let db = TestDb::new().await;
    let kek = new_kek();
    let a = start_with_own_issuer(auth_settings(&db, &kek)).await;
    let mut b_settings = auth_settings(&db, &kek);
    b_settings.issuer = a.address.parse().unwrap();
    b_settings.bind = "127.0.0.1:0".parse().unwrap();
    let b = AuthServer::start(b_settings).await;

    let from_a = a.access_token().await;
    let from_b = b.access_token().await;
    let jwks_a = jwks(&a).await;
    let jwks_b = jwks(&b).await;

    assert_eq!(
        serde_json::to_value(&jwks_a).unwrap(),
        serde_json::to_value(&jwks_b).unwrap()
    );
    verify_with(&jwks_b, &from_a, &a.address, "players-api");
    verify_with(&jwks_a, &from_b, &a.address, "players-api");
    assert_eq!(kid_of(&from_a), kid_of(&from_b));
}

#[tokio::test]
async fn an_immediate_rotation_on_one_instance_reaches_the_other_and_old_tokens_still_verify() {
    let db = TestDb::new().await;
    let kek = new_kek();
    let mut settings = auth_settings(&db, &kek);
    settings.key_refresh_secs = 1;
    let a = start_with_own_issuer(settings.clone()).await;
    let mut b_settings = settings.clone();
    b_settings.issuer = a.address.parse().unwrap();
    b_settings.bind = "127.0.0.1:0".parse().unwrap();
    let b = AuthServer::start(b_settings).await;
    let old_token = b.access_token().await;

    let printed = cli(&a.settings, &["keys", "rotate", "--now"])
        .await
        .unwrap();
    let new_kid = printed.split_whitespace().next().unwrap().to_owned();
    assert_ne!(new_kid, kid_of(&old_token));

    let mut signed_by_b = String::new();
    for _ in 0..50 {
        signed_by_b = b.access_token().await;
        if kid_of(&signed_by_b) == new_kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kid_of(&signed_by_b),
        new_kid,
        "the other instance signs with the new key"
    );
    let jwks = jwks(&b).await;
    assert_eq!(jwks.keys.len(), 2, "the retired key stays published");
    verify_with(&jwks, &old_token, &a.address, "players-api");
    verify_with(&jwks, &signed_by_b, &a.address, "players-api");
    let listed = cli(&a.settings, &["keys", "list"]).await.unwrap();
    assert!(
        listed.contains("retired") && listed.contains("active"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_scheduled_rotation_publishes_first_and_signs_only_after_the_publish_ahead_delay() {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    settings.key_refresh_secs = 1;
    settings.key_publish_ahead_secs = Some(2);
    let server = start_with_own_issuer(settings).await;
    let old_kid = kid_of(&server.access_token().await);

    let printed = cli(&server.settings, &["keys", "rotate"]).await.unwrap();
    let new_kid = printed.split_whitespace().next().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let published = jwks(&server).await;
    assert!(
        published.find(&new_kid).is_some(),
        "a pending key is published at once"
    );
    assert_eq!(
        kid_of(&server.access_token().await),
        old_kid,
        "but does not sign yet"
    );

    let mut kid = String::new();
    for _ in 0..60 {
        kid = kid_of(&server.access_token().await);
        if kid == new_kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kid, new_kid,
        "the pending key becomes active after the delay"
    );
    let listed = cli(&server.settings, &["keys", "list"]).await.unwrap();
    let states: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "active").count(),
        1,
        "{listed}"
    );
}

#[tokio::test]
async fn concurrent_first_starts_on_an_empty_database_agree_on_one_key() {
    let db = TestDb::new().await;
    let kek = new_kek();
    let starts = (0..3).map(|_| {
        let settings = auth_settings(&db, &kek);
        tokio::spawn(async move { auth_server::Application::build(settings).await.map(|_| ()) })
    });
    for start in starts.collect::<Vec<_>>() {
        start.await.unwrap().expect("every instance starts");
    }

    let server = start_with_own_issuer(auth_settings(&db, &kek)).await;
    let listed = cli(&server.settings, &["keys", "list"]).await.unwrap();
    let keys: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(keys.len(), 1, "one key made, none churned: {listed}");
    assert!(keys[0].contains(" active "), "{listed}");
}

#[tokio::test]
async fn only_one_rotation_can_be_pending_at_a_time() {
    let db = TestDb::new().await;
    let server = start_with_own_issuer(auth_settings(&db, &new_kek())).await;

    cli(&server.settings, &["keys", "rotate"]).await.unwrap();
    let err = cli(&server.settings, &["keys", "rotate"])
        .await
        .unwrap_err();

    assert!(err.contains("already pending"), "{err}");
    let listed = cli(&server.settings, &["keys", "list"]).await.unwrap();
    assert_eq!(listed.matches(" pending ").count(), 1, "{listed}");
}

/// Writes a key row as someone with write access to the database but without the
/// key-encryption key could: a public key of their own, marked retired so it is only published.
async fn insert_forged_retired_key(
    db: &TestDb,
) -> (String, josekit::jws::alg::ecdsa::EcdsaJwsSigner) {
    use josekit::jws::ES256;
    let pair = ES256.generate_key_pair().unwrap();
    let mut public = pair.to_jwk_public_key();
    let kid = "forged-key".to_owned();
    public.set_key_id(&kid);
    public.set_algorithm("ES256");
    public.set_key_use("sig");
    let signer = ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap();
    let now = auth_server::clock::now_secs();
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    conn.execute_unprepared(&format!(
        "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, created_at, \
         activate_at, activated_at, retired_at) VALUES ('{kid}', 'ES256', 'retired', \
         'not.a.sealed.private.key', '{public}', {now}, {now}, {now}, {now})"
    ))
    .await
    .expect("insert the forged row");
    conn.close().await.ok();
    (kid, signer)
}

fn forged_token(
    signer: &josekit::jws::alg::ecdsa::EcdsaJwsSigner,
    kid: &str,
    issuer: &str,
) -> String {
    let now = auth_server::clock::now_secs();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(kid);
    let claims = serde_json::json!({
        "iss": issuer, "sub": CLIENT_ID, "aud": "players-api", "client_id": CLIENT_ID,
        "scope": "players:write", "iat": now, "nbf": now, "exp": now + 600,
        "jti": "forged-jti",
    });
    josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, signer).unwrap()
}

async fn introspect_active(server: &AuthServer, token: &str) -> bool {
    let response = server
        .http
        .post(server.url("/auth/introspect"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["active"] == true
}

#[tokio::test]
async fn a_key_row_written_without_the_key_encryption_key_is_never_published_or_trusted() {
    let db = TestDb::new().await;
    let settings = auth_settings(&db, &new_kek());
    let first = start_with_own_issuer(settings.clone()).await;
    let genuine = kid_of(&first.access_token().await);
    first.stop().await;
    let (forged, signer) = insert_forged_retired_key(&db).await;

    let server = start_with_own_issuer(settings).await;

    let published: Vec<String> = jwks(&server)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(
        published,
        vec![genuine],
        "only the genuine key is published"
    );
    let token = forged_token(&signer, &forged, &server.address);
    assert!(!introspect_active(&server, &token).await);
    assert!(introspect_active(&server, &server.access_token().await).await);
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("signing_key_integrity_failures_total")),
        "{metrics}"
    );
}

#[tokio::test]
async fn key_rows_from_before_their_authentication_are_authenticated_at_start_and_keep_working() {
    let db = TestDb::new().await;
    let settings = auth_settings(&db, &new_kek());
    let first = start_with_own_issuer(settings.clone()).await;
    let old_token = first.access_token().await;
    first.stop().await;
    // What the previous schema held: no authentication on the row.
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    conn.execute_unprepared("UPDATE signing_keys SET mac = NULL")
        .await
        .expect("the mac column exists");

    let server = start_with_own_issuer(settings).await;

    assert_eq!(kid_of(&server.access_token().await), kid_of(&old_token));
    assert_eq!(jwks(&server).await.keys.len(), 1);
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT kid FROM signing_keys WHERE mac IS NULL",
        ))
        .await
        .unwrap();
    assert!(rows.is_empty(), "every row is authenticated again");
    conn.close().await.ok();
}

#[tokio::test]
async fn a_revoked_key_is_unpublished_at_once_and_its_tokens_are_refused() {
    let (auth, _db) = spawn_auth_server_with(|s| {
        s.key_refresh_secs = 1;
        s.jwks_max_age_secs = 1;
    })
    .await;
    let api = spawn_resource_api_with(&auth.address, |s| s.jwks_cooldown_secs = 0).await;
    let compromised = auth.access_token().await;
    let kid = kid_of(&compromised);
    assert_eq!(
        api.create(Some(&compromised), &new_player(61))
            .await
            .status(),
        201
    );

    let printed = cli(&auth.settings, &["keys", "revoke", &kid])
        .await
        .unwrap();
    assert!(printed.contains(&kid), "{printed}");

    // The issuer drops it at its next key refresh (1 s here) and signs with a new key.
    let started = std::time::Instant::now();
    loop {
        let published: Vec<String> = jwks(&auth)
            .await
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        if !published.contains(&kid) {
            assert_eq!(published.len(), 1, "a new key signs in its place");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = auth.access_token().await;
    assert_ne!(kid_of(&fresh), kid);
    assert!(!introspect_active(&auth, &compromised).await);
    assert!(introspect_active(&auth, &fresh).await);
    // The resource server refuses the revoked key's tokens once its cached key set expires.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        api.create(Some(&fresh), &new_player(62)).await.status(),
        201
    );
    assert_eq!(
        api.create(Some(&compromised), &new_player(63))
            .await
            .status(),
        401
    );
    let listed = cli(&auth.settings, &["keys", "list"]).await.unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&kid) && l.contains("revoked")),
        "{listed}"
    );
}
