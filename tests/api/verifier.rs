//! The resource-api's trust in the auth-server, end to end: only tokens signed with a key
//! the issuer publishes, for this audience, in time, get through; key rotation needs no
//! restart; an issuer outage does not stop tokens already issued.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::jws::{ES256, HS256, JwsHeader, JwsSigner};
use serde_json::{Value, json};

use crate::api_helpers::{assert_invalid_token, new_player, spawn_resource_api_with};
use crate::helpers::{CLIENT_ID, CLIENT_SECRET, cli, decode_unverified, spawn_auth_server_with};
use crate::players::{Services, services};

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A compact JWS from the given header, claims and signer (the test's own key, never the
/// issuer's).
fn signed(header: &Value, claims: &Value, signer: &dyn JwsSigner) -> String {
    let header = JwsHeader::from_map(header.as_object().unwrap().clone()).unwrap();
    josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, signer).unwrap()
}

#[tokio::test]
async fn forged_tokens_are_401_invalid_token_and_change_nothing() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let real = auth.access_token().await;
    let (real_header, claims) = decode_unverified(&real);
    let real_kid = real_header["kid"].as_str().unwrap();
    let published: Value = auth.get_json("/.well-known/jwks.json").await;
    let published_key = published["keys"][0].to_string();

    let attacker = ES256.generate_key_pair().unwrap();
    let attacker_signer = ES256
        .signer_from_der(attacker.to_der_private_key())
        .unwrap();
    let mut attacker_jwk = attacker.to_jwk_public_key();
    attacker_jwk.set_key_id("attacker");
    let attacker_jwk = Value::Object(attacker_jwk.as_ref().clone());
    let hs256_with_public_key = HS256.signer_from_bytes(published_key.as_bytes()).unwrap();
    let header = |extra: Value| {
        let mut header = json!({"typ": "at+jwt", "alg": "ES256", "kid": "attacker"});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        header
    };
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("someone-else");
    let real_parts: Vec<&str> = real.split('.').collect();

    let forgeries = [
        (
            "alg none",
            format!(
                "{}.{}.",
                encode(&json!({"typ": "at+jwt", "alg": "none", "kid": real_kid})),
                encode(&claims)
            ),
        ),
        (
            "HS256 keyed with the published public key",
            signed(
                &json!({"typ": "at+jwt", "alg": "HS256", "kid": real_kid}),
                &claims,
                &hs256_with_public_key,
            ),
        ),
        (
            "jku pointing at the attacker's keys",
            signed(
                &header(json!({"jku": "http://127.0.0.1:1/jwks.json"})),
                &claims,
                &attacker_signer,
            ),
        ),
        (
            "x5u pointing at the attacker's certificate",
            signed(
                &header(json!({"x5u": "http://127.0.0.1:1/cert.pem"})),
                &claims,
                &attacker_signer,
            ),
        ),
        (
            "the attacker's key embedded as jwk",
            signed(
                &header(json!({"jwk": attacker_jwk})),
                &claims,
                &attacker_signer,
            ),
        ),
        (
            "a key the issuer never published",
            signed(&header(json!({})), &claims, &attacker_signer),
        ),
        (
            "the attacker's key under the issuer's kid",
            signed(&header(json!({"kid": real_kid})), &claims, &attacker_signer),
        ),
        (
            "a plain JWT type",
            format!(
                "{}.{}.{}",
                encode(&json!({"typ": "JWT", "alg": "ES256", "kid": real_kid})),
                real_parts[1],
                real_parts[2]
            ),
        ),
        (
            "a tampered payload",
            format!(
                "{}.{}.{}",
                real_parts[0],
                encode(&tampered_claims),
                real_parts[2]
            ),
        ),
        (
            "an oversized token",
            format!(
                "{}.{}.{}",
                real_parts[0],
                "A".repeat(10 * 1024),
                real_parts[2]
            ),
        ),
    ];

    for (why, token) in forgeries {
        let response = api.create(Some(&token), &new_player(50)).await;
        assert_invalid_token(response, why).await;
        let response = api.delete(Some(&token), 10).await;
        assert_invalid_token(response, why).await;
    }
    assert!(api.player(50).await.is_none());
    assert_eq!(api.player(10).await.unwrap()["lastName"], "Messi");
    assert_eq!(
        api.create(Some(&real), &new_player(50)).await.status(),
        201,
        "the real token works"
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_401_invalid_token() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth
        .access_token_for(CLIENT_ID, CLIENT_SECRET, &[("audience", "scouting-api")])
        .await;
    assert_eq!(decode_unverified(&token).1["aud"], "scouting-api");

    let response = api.create(Some(&token), &new_player(51)).await;

    assert_eq!(
        crate::api_helpers::challenge(&response),
        format!(
            r#"Bearer realm="players-api", error="invalid_token", error_description="token is not meant for this audience"{}"#,
            crate::api_helpers::RESOURCE_METADATA
        )
    );
    assert_invalid_token(response, "another audience").await;
}

#[tokio::test]
async fn an_expired_token_is_401_invalid_token() {
    let (auth, _auth_db) = spawn_auth_server_with(|settings| settings.token_ttl_secs = 1).await;
    let api = spawn_resource_api_with(&auth.address, |settings| settings.leeway_secs = 0).await;
    let token = auth.access_token().await;
    assert_eq!(
        api.create(Some(&token), &new_player(52)).await.status(),
        201
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = api.delete(Some(&token), 52).await;

    assert_eq!(
        crate::api_helpers::challenge(&response),
        format!(
            r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired"{}"#,
            crate::api_helpers::RESOURCE_METADATA
        )
    );
    assert_invalid_token(response, "expired").await;
    assert!(api.player(52).await.is_some());
}

#[tokio::test]
async fn a_rotated_key_is_trusted_without_a_restart_and_old_tokens_still_pass() {
    let (auth, _auth_db) = spawn_auth_server_with(|settings| settings.key_refresh_secs = 1).await;
    let api =
        spawn_resource_api_with(&auth.address, |settings| settings.jwks_cooldown_secs = 0).await;
    let old_token = auth.access_token().await;
    let old_kid = decode_unverified(&old_token).0["kid"].clone();
    assert_eq!(
        api.create(Some(&old_token), &new_player(53)).await.status(),
        201
    );

    cli(&auth.settings, &["keys", "rotate", "--now"])
        .await
        .unwrap();
    let mut new_token = auth.access_token().await;
    for _ in 0..50 {
        if decode_unverified(&new_token).0["kid"] != old_kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        new_token = auth.access_token().await;
    }
    assert_ne!(
        decode_unverified(&new_token).0["kid"],
        old_kid,
        "the issuer signs with a new key"
    );

    assert_eq!(
        api.create(Some(&new_token), &new_player(54)).await.status(),
        201,
        "new key"
    );
    assert_eq!(
        api.create(Some(&old_token), &new_player(55)).await.status(),
        201,
        "old key"
    );
}

#[tokio::test]
async fn tokens_already_issued_keep_working_while_the_issuer_is_down() {
    let (auth, _auth_db) = spawn_auth_server_with(|_| {}).await;
    let api = spawn_resource_api_with(&auth.address, |_| {}).await;
    let token = auth.access_token().await;
    let issuer = auth.address.clone();

    auth.stop().await;
    assert!(
        reqwest::get(format!("{issuer}/.well-known/jwks.json"))
            .await
            .is_err(),
        "the issuer is down"
    );

    assert_eq!(
        api.create(Some(&token), &new_player(56)).await.status(),
        201
    );
    assert_eq!(api.delete(Some(&token), 56).await.status(), 204);
    assert_eq!(
        api.get("/health/ready").await.status(),
        200,
        "still ready on the known keys"
    );
}

#[tokio::test]
async fn the_api_starts_while_the_issuer_is_down_and_is_ready_once_it_is_up() {
    let (auth, _auth_db) = spawn_auth_server_with(|_| {}).await;
    let issuer = auth.address.clone();
    let settings_of_auth = auth.settings.clone();
    auth.stop().await;

    let db = crate::helpers::TestDb::new().await;
    let settings = crate::api_helpers::api_settings(&db, &issuer);
    let api = crate::api_helpers::start(settings, db).await;
    assert_eq!(api.get("/health/ready").await.status(), 503);
    assert_eq!(
        api.get("/players").await.status(),
        200,
        "reads work without the issuer"
    );

    let auth = crate::helpers::AuthServer::start(settings_of_auth).await;
    api.wait_until_ready().await;
    let token = auth.access_token().await;
    assert_eq!(
        api.create(Some(&token), &new_player(57)).await.status(),
        201
    );
}
