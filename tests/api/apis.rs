//! APIs as registered entries, over real sockets: `resource` names an API by its id or its
//! resource URI (RFC 8707), a token for an API carries only that API's scopes and lives no
//! longer than the shortest of the server's, the client's and the API's limits, an API may
//! refuse grants, and the CLI registers, grants, narrows and removes.

use auth_server::config::{BootstrapApi, BootstrapClient, Settings};
use serde_json::Value;

use crate::helpers::{
    ACCESS_TOKEN_TYPE, APP_ID, APP_SECRET, AuthServer, CLIENT_ID, CLIENT_SECRET, PASSWORD,
    TOKEN_EXCHANGE, TestDb, USERNAME, assert_oauth_error_code, cli, decode_unverified, secret_from,
    spawn_auth_server_with, sync_bound,
};

const PLAYERS_URI: &str = "https://players.example";
const SCOUTING_URI: &str = "https://scouting.example/v1";

fn api(id: &str, resource: &str, scopes: &[&str]) -> BootstrapApi {
    BootstrapApi {
        id: id.into(),
        resource: Some(resource.into()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..BootstrapApi::default()
    }
}

/// players-api and scouting-api registered; the dev client holds scopes of both.
fn registered(settings: &mut Settings) {
    settings.apis = vec![
        api(
            "players-api",
            PLAYERS_URI,
            &["players:read", "players:write", "squad:admin"],
        ),
        api("scouting-api", SCOUTING_URI, &["scouting:read"]),
    ];
    settings.clients[0].scopes = vec!["players:write".into(), "scouting:read".into()];
}

/// The token endpoint's answer to the dev client, and the token's claims.
async fn token(auth: &AuthServer, (id, secret): (&str, &str), extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let response = auth.token_basic(id, secret, &form).await;
    assert_eq!(response.status(), 200, "token for {extra:?}");
    let body: Value = response.json().await.unwrap();
    let claims = decode_unverified(body["access_token"].as_str().unwrap()).1;
    serde_json::json!({ "answer": body, "claims": claims })
}

const DEV: (&str, &str) = (CLIENT_ID, CLIENT_SECRET);

/// A client credentials request of the dev client, as answered.
async fn ask(auth: &AuthServer, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    auth.token_basic(CLIENT_ID, CLIENT_SECRET, &form).await
}

/// A password-grant request of the first-party app for `audience`.
async fn password(auth: &AuthServer, audience: &str) -> reqwest::Response {
    auth.token_basic(
        APP_ID,
        APP_SECRET,
        &[
            ("grant_type", "password"),
            ("username", USERNAME),
            ("password", PASSWORD),
            ("audience", audience),
        ],
    )
    .await
}

#[tokio::test]
async fn resource_names_an_api_by_uri_or_id_and_its_token_carries_only_that_apis_scopes() {
    let (auth, _db) = spawn_auth_server_with(registered).await;

    // By resource URI, in any spelling of it.
    for resource in [PLAYERS_URI, "https://PLAYERS.example:443/"] {
        let got = token(&auth, DEV, &[("resource", resource)]).await;
        assert_eq!(got["claims"]["aud"], "players-api");
        assert_eq!(got["claims"]["scope"], "players:write");
        assert_eq!(got["answer"]["scope"], "players:write");
    }
    let got = token(&auth, DEV, &[("resource", SCOUTING_URI)]).await;
    assert_eq!(got["claims"]["aud"], "scouting-api");
    assert_eq!(got["claims"]["scope"], "scouting:read");
    // By id, and both naming the same API.
    let got = token(&auth, DEV, &[("audience", "scouting-api")]).await;
    assert_eq!(got["claims"]["scope"], "scouting:read");
    let got = token(
        &auth,
        DEV,
        &[("resource", SCOUTING_URI), ("audience", "scouting-api")],
    )
    .await;
    assert_eq!(got["claims"]["aud"], "scouting-api");
    // No target: the first audience, with its scopes only.
    let got = token(&auth, DEV, &[]).await;
    assert_eq!(got["claims"]["aud"], "players-api");
    assert_eq!(got["claims"]["scope"], "players:write");

    // A scope of another API, even one the client holds.
    assert_oauth_error_code(
        ask(
            &auth,
            &[("resource", PLAYERS_URI), ("scope", "scouting:read")],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    // Unknown APIs, by URI or id; a URI with a fragment; two different APIs at once.
    let unknown: [&[(&str, &str)]; 5] = [
        &[("resource", "https://billing.example")],
        &[("resource", "https://players.example/other")],
        &[("audience", "billing-api")],
        &[("resource", "https://players.example#frag")],
        &[("resource", PLAYERS_URI), ("audience", "scouting-api")],
    ];
    for extra in unknown {
        assert_oauth_error_code(ask(&auth, extra).await, 400, "invalid_target").await;
    }
    // The reader is not granted scouting-api: its URI is as unknown to it as any.
    let refused = auth
        .token_basic(
            "reader",
            "reader-secret",
            &[
                ("grant_type", "client_credentials"),
                ("resource", SCOUTING_URI),
            ],
        )
        .await;
    assert_oauth_error_code(refused, 400, "invalid_target").await;

    // Discovery lists the APIs' scopes.
    let metadata = auth
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let supported = metadata["scopes_supported"].as_array().unwrap();
    assert!(supported.contains(&"scouting:read".into()), "{metadata}");
}

#[tokio::test]
async fn a_token_lives_the_shortest_of_the_servers_the_clients_and_the_apis_limits() {
    let (auth, _db) = spawn_auth_server_with(|settings| {
        registered(settings);
        settings.token_ttl_secs = 600;
        settings.apis[1].token_ttl_secs = Some(120);
        settings.clients[0].token_ttl_secs = Some(300);
        settings.clients[1].token_ttl_secs = Some(60);
        settings.clients[1].audiences = vec!["players-api".into(), "scouting-api".into()];
        settings.clients[1].scopes = vec!["players:read".into(), "scouting:read".into()];
    })
    .await;
    let lifetime = |got: &Value| {
        let claims = &got["claims"];
        let lived = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(got["answer"]["expires_in"].as_i64().unwrap(), lived);
        lived
    };
    // The client's 300 under the server's 600; the API's 120 under the client's 300.
    assert_eq!(lifetime(&token(&auth, DEV, &[]).await), 300);
    assert_eq!(
        lifetime(&token(&auth, DEV, &[("resource", SCOUTING_URI)]).await),
        120
    );
    // The reader's own 60 under the API's 120.
    let reader = ("reader", "reader-secret");
    assert_eq!(
        lifetime(&token(&auth, reader, &[("resource", SCOUTING_URI)]).await),
        60
    );
}

#[tokio::test]
async fn an_api_may_refuse_tokens_from_grants_it_does_not_take() {
    let (auth, _db) = spawn_auth_server_with(|settings| {
        registered(settings);
        // Machines only on scouting-api; the app may ask for both.
        settings.apis[1].grant_types = Some(vec!["client_credentials".into()]);
        settings.clients[2].audiences = vec!["players-api".into(), "scouting-api".into()];
        settings.clients[2].scopes.push("scouting:read".into());
        settings.users[0].scopes.push("scouting:read".into());
    })
    .await;
    assert_oauth_error_code(
        password(&auth, "scouting-api").await,
        400,
        "unauthorized_client",
    )
    .await;
    let ok = password(&auth, "players-api").await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    // A token for players-api carries none of scouting-api's scopes, though the user has one.
    assert_eq!(body["scope"], "players:read players:write");
    let refresh = body["refresh_token"].as_str().unwrap();
    // Its refresh stays with players-api: naming it by URI is fine, naming another is not.
    let other = auth
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("resource", SCOUTING_URI),
            ],
        )
        .await;
    assert_oauth_error_code(other, 400, "invalid_target").await;
    let same = auth
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("resource", PLAYERS_URI),
            ],
        )
        .await;
    assert_eq!(same.status(), 200);
}

/// The CLI's `apis` and `clients grant` against a running server: a change reaches it through
/// the change log.
#[tokio::test]
async fn the_cli_registers_grants_narrows_and_removes_apis() {
    let (auth, _db): (AuthServer, TestDb) = spawn_auth_server_with(|_| {}).await;
    let settings = &auth.settings;
    let added = cli(
        settings,
        &[
            "apis",
            "add",
            "--id",
            "billing-api",
            "--resource",
            "https://billing.example",
            "--scope",
            "invoices:read",
            "--scope",
            "invoices:write",
            "--token-ttl",
            "90",
        ],
    )
    .await
    .unwrap();
    assert!(added.contains("added api billing-api"), "{added}");
    let taken = cli(
        settings,
        &[
            "apis",
            "add",
            "--id",
            "billing-v2",
            "--resource",
            "https://billing.example/",
        ],
    )
    .await
    .unwrap_err();
    assert!(taken.contains("already names API billing-api"), "{taken}");
    let named = cli(
        settings,
        &["apis", "add", "--id", "https://billing.example"],
    )
    .await
    .unwrap_err();
    assert!(
        named.contains("is API billing-api's resource URI"),
        "{named}"
    );
    let twice = cli(settings, &["apis", "add", "--id", "billing-api"])
        .await
        .unwrap_err();
    assert!(twice.contains("already exists"), "{twice}");
    let bad = cli(
        settings,
        &["apis", "add", "--id", "x", "--resource", "http://x.example"],
    )
    .await
    .unwrap_err();
    assert!(bad.contains("https"), "{bad}");

    // A client for it: registered, then granted one of its scopes.
    let printed = cli(
        settings,
        &[
            "clients",
            "add",
            "--id",
            "accounting",
            "--api",
            "players-api",
            "--scope",
            "players:read",
        ],
    )
    .await
    .unwrap();
    let secret = secret_from(&printed);
    let foreign = cli(
        settings,
        &[
            "clients",
            "grant",
            "accounting",
            "--api",
            "billing-api",
            "--scope",
            "players:write",
        ],
    )
    .await
    .unwrap_err();
    assert!(
        foreign.contains("players:write not defined by API billing-api"),
        "{foreign}"
    );
    let unknown = cli(
        settings,
        &["clients", "grant", "accounting", "--api", "nowhere-api"],
    )
    .await
    .unwrap_err();
    assert!(unknown.contains("no api nowhere-api"), "{unknown}");
    let granted = cli(
        settings,
        &[
            "clients",
            "grant",
            "accounting",
            "--api",
            "billing-api",
            "--scope",
            "invoices:write",
        ],
    )
    .await
    .unwrap();
    assert!(
        granted.contains("granted accounting API billing-api"),
        "{granted}"
    );
    let accounting = ("accounting", secret.as_str());
    let got = token(
        &auth,
        accounting,
        &[("resource", "https://billing.example")],
    )
    .await;
    assert_eq!(got["claims"]["aud"], "billing-api");
    assert_eq!(got["claims"]["scope"], "invoices:write");
    assert_eq!(got["answer"]["expires_in"], 90);
    // Its grant on players-api is unchanged.
    let got = token(&auth, accounting, &[]).await;
    assert_eq!(got["claims"]["scope"], "players:read");

    let listed = cli(settings, &["apis", "list"]).await.unwrap();
    let line = listed
        .lines()
        .find(|l| l.starts_with("billing-api"))
        .unwrap();
    assert!(
        line.contains("https://billing.example") && line.contains("invoices:read invoices:write"),
        "{listed}"
    );

    // Narrowed: the server sees it within the sync bound, and the grant shrinks with it.
    cli(
        settings,
        &["apis", "update", "billing-api", "--scope", "invoices:read"],
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        let response = auth
            .token_basic(
                "accounting",
                &secret,
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", "https://billing.example"),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        if body["scope"].is_null() || body["scope"] == "" {
            break;
        }
        assert_eq!(body["scope"], "invoices:write");
        assert!(started.elapsed() < sync_bound(settings), "still {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The narrowed-away scope left the client too: no other audience of it may carry it on.
    let listed = cli(settings, &["clients", "list"]).await.unwrap();
    let line = listed
        .lines()
        .find(|l| l.starts_with("accounting"))
        .unwrap();
    assert!(!line.contains("invoices:write"), "{listed}");

    // Removal: refused while a client names it, then allowed.
    let refused = cli(settings, &["apis", "remove", "billing-api"])
        .await
        .unwrap_err();
    assert!(refused.contains("accounting"), "{refused}");
    cli(
        settings,
        &["clients", "ungrant", "accounting", "--api", "billing-api"],
    )
    .await
    .unwrap();
    let last = cli(
        settings,
        &["clients", "ungrant", "accounting", "--api", "players-api"],
    )
    .await
    .unwrap_err();
    assert!(last.contains("only API"), "{last}");
    let listed = cli(settings, &["clients", "list"]).await.unwrap();
    let line = listed
        .lines()
        .find(|l| l.starts_with("accounting"))
        .unwrap();
    // billing-api's scope went with it; players:read (players-api is undeclared here) stays.
    assert!(
        line.contains("players:read") && !line.contains("invoices") && !line.contains("billing"),
        "{listed}"
    );
    cli(settings, &["apis", "remove", "billing-api"])
        .await
        .unwrap();
    let listed = cli(settings, &["apis", "list"]).await.unwrap();
    assert!(!listed.contains("billing-api"), "{listed}");
}

#[tokio::test]
async fn apis_from_the_configuration_are_managed_there_and_checked_at_start() {
    let (auth, _db) = spawn_auth_server_with(registered).await;
    let refused = cli(
        &auth.settings,
        &["apis", "update", "players-api", "--token-ttl", "30"],
    )
    .await
    .unwrap_err();
    assert!(
        refused.contains("managed by the configuration"),
        "{refused}"
    );

    // A client scope no API of it defines would never be in a token: refused at start.
    let mut settings = auth.settings.clone();
    settings.clients.push(BootstrapClient {
        client_id: "stray".into(),
        client_secret: Some("stray-secret-0123".into()),
        scopes: vec!["players:read".into(), "invoices:read".into()],
        audiences: vec!["players-api".into()],
        ..BootstrapClient::default()
    });
    let err = match auth_server::Application::build(settings).await {
        Ok(_) => panic!("a client with an undefined scope started"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("clients[3].scopes") && err.contains("invoices:read"),
        "{err}"
    );
}

/// A token exchange into a registered API: named by its URI, and the scope no wider than what
/// the target defines, on top of the subject token's and the actor's.
#[tokio::test]
async fn an_exchange_into_a_registered_api_gets_only_scopes_that_api_defines() {
    let (auth, _db) = spawn_auth_server_with(|settings| {
        registered(settings);
        // scouting-api reads squads too.
        settings.apis[1].scopes.push("players:read".into());
        settings.clients.push(BootstrapClient {
            client_id: "players-api".into(),
            client_secret: Some("players-api-exchange-secret".into()),
            scopes: vec!["players:read".into(), "players:write".into()],
            audiences: vec!["players-api".into()],
            grant_types: vec![TOKEN_EXCHANGE.into()],
            exchange_to: vec!["scouting-api".into()],
            ..BootstrapClient::default()
        });
    })
    .await;
    let subject = auth.user_token().await;
    let actor = ("players-api", "players-api-exchange-secret");
    let exchange =
        |extra: &'static [(&'static str, &'static str)]| auth.exchange(actor, &subject, extra);

    let response = exchange(&[("resource", SCOUTING_URI)]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = decode_unverified(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["aud"], "scouting-api");
    assert_eq!(claims["sub"], USERNAME);
    assert_eq!(claims["act"]["sub"], "players-api");
    // players:write is the subject's and the actor's, but not scouting-api's.
    assert_eq!(claims["scope"], "players:read");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);

    assert_oauth_error_code(
        exchange(&[("resource", SCOUTING_URI), ("scope", "players:write")]).await,
        400,
        "invalid_scope",
    )
    .await;
    // scouting:read is scouting-api's, but neither the subject's nor the actor's.
    assert_oauth_error_code(
        exchange(&[("audience", "scouting-api"), ("scope", "scouting:read")]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert_oauth_error_code(
        exchange(&[("resource", "https://billing.example")]).await,
        400,
        "invalid_target",
    )
    .await;
    // Its own API, by URI: not an exchange target.
    assert_oauth_error_code(
        exchange(&[("resource", PLAYERS_URI)]).await,
        400,
        "invalid_target",
    )
    .await;
}
