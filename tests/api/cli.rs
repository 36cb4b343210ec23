//! `auth-server clients …`: the secret is printed once, stored hashed, and rotation or removal
//! reaches a running server within its sync interval, even for a secret it already verified.

use crate::helpers::{cli, refused_within, secret_from, spawn_auth_server, sync_bound};

#[tokio::test]
async fn an_added_client_gets_tokens_with_its_printed_secret() {
    let (server, _db) = spawn_auth_server().await;

    let printed = cli(
        &server.settings,
        &[
            "clients",
            "add",
            "--id",
            "reporting",
            "--scope",
            "players:read",
            "--audience",
            "scouting-api",
        ],
    )
    .await
    .unwrap();
    let secret = secret_from(&printed);
    let token = server.access_token_for("reporting", &secret, &[]).await;

    let claims = crate::helpers::decode_unverified(&token).1;
    assert_eq!(claims["aud"], "scouting-api");
    assert_eq!(claims["scope"], "players:read");
    let listed = cli(&server.settings, &["clients", "list"]).await.unwrap();
    assert!(listed.contains("reporting"), "{listed}");
    assert!(!listed.contains(&secret), "list never shows a secret");
}

#[tokio::test]
async fn adding_a_client_twice_is_refused() {
    let (server, _db) = spawn_auth_server().await;
    let args = [
        "clients",
        "add",
        "--id",
        "dup",
        "--scope",
        "a",
        "--audience",
        "b",
    ];

    cli(&server.settings, &args).await.unwrap();
    let err = cli(&server.settings, &args).await.unwrap_err();

    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn a_rotated_secret_stops_working_within_the_sync_interval_even_after_it_was_verified() {
    let (server, _db) = spawn_auth_server().await;
    let printed = cli(
        &server.settings,
        &[
            "clients",
            "add",
            "--id",
            "svc",
            "--scope",
            "a",
            "--audience",
            "b",
        ],
    )
    .await
    .unwrap();
    let old = secret_from(&printed);
    server.access_token_for("svc", &old, &[]).await;

    let new = secret_from(
        &cli(&server.settings, &["clients", "rotate-secret", "svc"])
            .await
            .unwrap(),
    );
    refused_within(&server, "svc", &old, sync_bound(&server.settings)).await;
    server.access_token_for("svc", &new, &[]).await;
}

#[tokio::test]
async fn a_removed_client_is_refused() {
    let (server, _db) = spawn_auth_server().await;
    let printed = cli(
        &server.settings,
        &[
            "clients",
            "add",
            "--id",
            "gone",
            "--scope",
            "a",
            "--audience",
            "b",
        ],
    )
    .await
    .unwrap();
    let secret = secret_from(&printed);
    server.access_token_for("gone", &secret, &[]).await;

    cli(&server.settings, &["clients", "remove", "gone"])
        .await
        .unwrap();

    refused_within(&server, "gone", &secret, sync_bound(&server.settings)).await;
    assert!(
        cli(&server.settings, &["clients", "remove", "gone"])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_bootstrap_client_may_be_given_as_an_argon2id_hash() {
    let hash = auth_server::crypto::hash_secret("hashed-secret").unwrap();
    let (server, _db) = crate::helpers::spawn_auth_server_with(move |s| {
        let mut c = s.clients[0].clone();
        c.client_id = "hashed".into();
        c.client_secret = None;
        c.client_secret_hash = Some(hash);
        s.clients.push(c);
    })
    .await;

    server
        .access_token_for("hashed", "hashed-secret", &[])
        .await;
}
