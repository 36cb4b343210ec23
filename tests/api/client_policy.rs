//! Per-client policy: a client's own access-token lifetime, bounded by the server's, through
//! every grant that mints (client credentials, password, token exchange) and the CLI.

use auth_server::config::BootstrapClient;
use serde_json::Value;

use crate::helpers::{
    AuthServer, CLIENT_ID, CLIENT_SECRET, TestDb, auth_settings, cli, decode_unverified, new_kek,
    secret_from, spawn_auth_server_with,
};

/// `expires_in` of the answer, and `exp - iat` of the token.
async fn lifetimes(response: reqwest::Response) -> (i64, i64) {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = decode_unverified(body["access_token"].as_str().unwrap()).1;
    (
        body["expires_in"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
    )
}

async fn client_credentials(auth: &AuthServer, id: &str, secret: &str) -> (i64, i64) {
    lifetimes(
        auth.token_basic(id, secret, &[("grant_type", "client_credentials")])
            .await,
    )
    .await
}

#[tokio::test]
async fn a_clients_token_ttl_shortens_its_tokens_and_never_lengthens_them() {
    let (auth, _db) = spawn_auth_server_with(|settings| {
        settings.token_ttl_secs = 600;
        settings.clients[0].token_ttl_secs = Some(90);
        settings.clients[1].token_ttl_secs = Some(3600);
        settings.clients.push(BootstrapClient {
            client_id: "players-api".into(),
            client_secret: Some("players-api-exchange-secret".into()),
            scopes: vec!["players:write".into()],
            audiences: vec!["players-api".into()],
            grant_types: vec!["token-exchange".into()],
            exchange_to: vec!["scouting-api".into()],
            token_ttl_secs: Some(30),
            ..BootstrapClient::default()
        });
    })
    .await;

    // Its own, shorter than the server's 600 s.
    assert_eq!(
        client_credentials(&auth, CLIENT_ID, CLIENT_SECRET).await,
        (90, 90)
    );
    // Longer than the server's: the server's wins.
    assert_eq!(
        client_credentials(
            &auth,
            crate::helpers::READER_ID,
            crate::helpers::READER_SECRET
        )
        .await,
        (600, 600)
    );
    // An exchange: the actor's 30 s, shorter than what is left of the subject's 90 s.
    let subject = auth.access_token().await;
    let exchanged = auth
        .exchange(
            ("players-api", "players-api-exchange-secret"),
            &subject,
            &[],
        )
        .await;
    assert_eq!(lifetimes(exchanged).await, (30, 30));
}

#[tokio::test]
async fn the_cli_sets_a_token_ttl_and_lists_it_and_refuses_zero() {
    let (auth, _db) = spawn_auth_server_with(|_| {}).await;
    let printed = cli(
        &auth.settings,
        &[
            "clients",
            "add",
            "--id",
            "short-lived",
            "--scope",
            "players:read",
            "--audience",
            "players-api",
            "--token-ttl",
            "120",
        ],
    )
    .await
    .unwrap();
    let secret = secret_from(&printed);

    assert_eq!(
        client_credentials(&auth, "short-lived", &secret).await,
        (120, 120)
    );
    let listed = cli(&auth.settings, &["clients", "list"]).await.unwrap();
    let line = listed
        .lines()
        .find(|l| l.starts_with("short-lived"))
        .unwrap();
    assert!(line.contains(" 120s"), "{listed}");
    let err = cli(
        &auth.settings,
        &[
            "clients",
            "add",
            "--id",
            "never",
            "--scope",
            "players:read",
            "--audience",
            "players-api",
            "--token-ttl",
            "0",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("token_ttl_secs"), "{err}");
}

#[tokio::test]
async fn a_token_ttl_out_of_range_in_the_configuration_stops_the_start() {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    settings.clients[0].token_ttl_secs = Some(86_401);

    let err = match auth_server::startup::Application::build(settings).await {
        Ok(_) => panic!("a token_ttl_secs over a day was accepted"),
        Err(err) => err.to_string(),
    };

    assert!(err.contains("clients[0].token_ttl_secs"), "{err}");
}

#[tokio::test]
async fn a_clients_static_claims_are_in_its_tokens_and_the_api_accepts_them() {
    let (auth, _db) = spawn_auth_server_with(|settings| {
        settings.clients[0].claims = [
            ("tenant".to_owned(), serde_json::json!("acme")),
            ("tier".to_owned(), serde_json::json!(2)),
        ]
        .into();
    })
    .await;

    let token = auth.access_token().await;

    let claims = decode_unverified(&token).1;
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["tier"], 2);
    assert_eq!(claims["sub"], CLIENT_ID);
    let api = crate::api_helpers::spawn_resource_api(&auth.address).await;
    let created = api
        .create(Some(&token), &crate::api_helpers::new_player(42))
        .await;
    assert_eq!(created.status(), 201);
    // Another client's tokens carry none of them.
    let reader = auth
        .access_token_for(
            crate::helpers::READER_ID,
            crate::helpers::READER_SECRET,
            &[],
        )
        .await;
    assert!(decode_unverified(&reader).1.get("tenant").is_none());
}

#[tokio::test]
async fn static_claims_never_override_registered_ones() {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    settings.clients[0].claims = [("sub".to_owned(), serde_json::json!("someone-else"))].into();

    let err = match auth_server::startup::Application::build(settings).await {
        Ok(_) => panic!("a static sub claim was accepted"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("clients[0].claims") && err.contains("sub"),
        "{err}"
    );

    let (auth, _db) = spawn_auth_server_with(|_| {}).await;
    let add = |claim: &'static str| {
        let settings = auth.settings.clone();
        async move {
            cli(
                &settings,
                &[
                    "clients",
                    "add",
                    "--id",
                    "tenant-app",
                    "--scope",
                    "players:read",
                    "--audience",
                    "players-api",
                    "--claim",
                    claim,
                ],
            )
            .await
        }
    };
    let err = add("aud=billing-api").await.unwrap_err();
    assert!(err.contains("claims") && err.contains("aud"), "{err}");
    let secret = secret_from(&add("tenant=acme").await.unwrap());
    let token = auth.access_token_for("tenant-app", &secret, &[]).await;
    assert_eq!(decode_unverified(&token).1["tenant"], "acme");
}
