//! Keys live in the database: restarts keep them, instances share them, rotation follows
//! pending → active → retired, and private keys are sealed at rest.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use sea_orm::{ConnectionTrait, Statement};

use crate::discovery::{verify_independently, verify_with};
use crate::helpers::{
    AuthServer, TestDb, auth_settings, cli, decode_unverified, new_kek, start_with_own_issuer,
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
