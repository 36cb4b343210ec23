//! Several instances on one database, each serving clients from memory: a client added,
//! removed or given a new secret anywhere (the CLI, another instance's configuration) takes
//! effect on every instance within the sync interval, with no restart.

use crate::helpers::{
    AuthServer, cli, refused_within, secret_from, spawn_auth_server_with, start_with_own_issuer,
    sync_bound,
};

/// Two instances on one fresh database, syncing every 200 ms.
async fn two_instances() -> (AuthServer, AuthServer, crate::helpers::TestDb) {
    let (first, db) = spawn_auth_server_with(|s| s.client_sync_interval_ms = 200).await;
    let second = start_with_own_issuer(first.settings.clone()).await;
    (first, second, db)
}

async fn add_client(server: &AuthServer, id: &str) -> String {
    let printed = cli(
        &server.settings,
        &[
            "clients",
            "add",
            "--id",
            id,
            "--scope",
            "players:read",
            "--audience",
            "players-api",
        ],
    )
    .await
    .unwrap();
    secret_from(&printed)
}

#[tokio::test]
async fn a_client_removed_through_the_cli_is_refused_by_every_instance_within_the_bound() {
    let (first, second, _db) = two_instances().await;
    let secret = add_client(&first, "leaver").await;
    // Both hold the client (and its verified secret) in memory.
    first.access_token_for("leaver", &secret, &[]).await;
    second.access_token_for("leaver", &secret, &[]).await;

    cli(&first.settings, &["clients", "remove", "leaver"])
        .await
        .unwrap();

    let bound = sync_bound(&first.settings);
    for server in [&first, &second] {
        refused_within(server, "leaver", &secret, bound).await;
    }
}

#[tokio::test]
async fn a_secret_rotated_through_the_cli_works_and_the_old_one_stops_on_every_instance() {
    let (first, second, _db) = two_instances().await;
    let old = add_client(&first, "rotator").await;
    first.access_token_for("rotator", &old, &[]).await;
    second.access_token_for("rotator", &old, &[]).await;

    let new = secret_from(
        &cli(&second.settings, &["clients", "rotate-secret", "rotator"])
            .await
            .unwrap(),
    );

    let bound = sync_bound(&first.settings);
    for server in [&first, &second] {
        refused_within(server, "rotator", &old, bound).await;
        server.access_token_for("rotator", &new, &[]).await;
    }
}

#[tokio::test]
async fn a_client_added_elsewhere_is_accepted_by_an_instance_that_had_refused_it() {
    let (first, second, _db) = two_instances().await;
    // The second instance learns the id is unknown (and remembers that).
    let unknown = second
        .token_basic(
            "newcomer",
            "whatever",
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(unknown.status(), 401);

    let secret = add_client(&first, "newcomer").await;

    // (Asking over and over meanwhile would be five failures of the same client id from one
    // address, and throttled: ask once the bound has passed.)
    tokio::time::sleep(sync_bound(&first.settings)).await;
    second.access_token_for("newcomer", &secret, &[]).await;
}

#[tokio::test]
async fn a_secret_changed_in_one_instances_configuration_reaches_the_other() {
    let (first, second, _db) = two_instances().await;
    let id = crate::helpers::CLIENT_ID;
    let old = crate::helpers::CLIENT_SECRET;
    second.access_token_for(id, old, &[]).await;

    // The first instance restarts with a new secret for the configured client.
    let mut settings = first.settings.clone();
    first.stop().await;
    settings.clients[0].client_secret = Some("a-brand-new-development-secret".into());
    let restarted = crate::helpers::AuthServer::start(settings).await;

    refused_within(&second, id, old, sync_bound(&restarted.settings)).await;
    second
        .access_token_for(id, "a-brand-new-development-secret", &[])
        .await;
}
