//! Token exchange (RFC 8693) over real sockets: the players API, holding a caller's token,
//! gets one for the scouting API on behalf of the same subject; nothing grows on the way, and
//! every refusal is the standard error.

use std::time::Duration;

use auth_server::config::BootstrapClient;
use serde_json::{Value, json};

use crate::api_helpers::{new_player, spawn_resource_api_with};
use crate::helpers::{
    ACCESS_TOKEN_TYPE, APP_ID, APP_SECRET, AuthServer, CLIENT_ID, CLIENT_SECRET, PASSWORD,
    READER_ID, READER_SECRET, TOKEN_EXCHANGE, TestDb, USERNAME, assert_oauth_error_code,
    auth_settings, decode_unverified, new_kek, now_secs, spawn_auth_server_with,
};

/// The players API's own client: it may exchange tokens meant for players-api into tokens for
/// scouting-api, with at most `players:write`.
const PLAYERS_ID: &str = "players-api";
const PLAYERS_SECRET: &str = "players-api-exchange-secret";
/// The scouting API's client: the second hop, into stats-api.
const SCOUTING_ID: &str = "scouting-api";
const SCOUTING_SECRET: &str = "scouting-api-exchange-secret";

fn exchanger(id: &str, secret: &str, audience: &str, scopes: &[&str], to: &str) -> BootstrapClient {
    BootstrapClient {
        client_id: id.into(),
        client_secret: Some(secret.into()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        audiences: vec![audience.into()],
        grant_types: vec![TOKEN_EXCHANGE.into()],
        exchange_to: vec![to.into()],
        ..BootstrapClient::default()
    }
}

async fn server_with(
    configure: impl FnOnce(&mut auth_server::config::Settings),
) -> (AuthServer, TestDb) {
    spawn_auth_server_with(|settings| {
        settings.clients.push(exchanger(
            PLAYERS_ID,
            PLAYERS_SECRET,
            "players-api",
            &["players:write"],
            "scouting-api",
        ));
        settings.clients.push(exchanger(
            SCOUTING_ID,
            SCOUTING_SECRET,
            "scouting-api",
            &["players:write", "players:read"],
            "stats-api",
        ));
        configure(settings);
    })
    .await
}

async fn server() -> (AuthServer, TestDb) {
    server_with(|_| {}).await
}

const PLAYERS: (&str, &str) = (PLAYERS_ID, PLAYERS_SECRET);

/// What introspection tells client `id` about `token`.
async fn introspect(auth: &AuthServer, (id, secret): (&str, &str), token: &str) -> Value {
    let response = auth
        .http
        .post(auth.url("/auth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}
const SCOUTING: (&str, &str) = (SCOUTING_ID, SCOUTING_SECRET);

#[tokio::test]
async fn the_players_api_gets_a_scouting_token_for_its_caller_and_nothing_grows() {
    let (auth, _db) = server().await;
    let subject = auth.user_token().await;
    let subject_claims = decode_unverified(&subject).1;
    // A second later, so that a lifetime counted from now would outlive the subject token.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let response = auth
        .exchange(PLAYERS, &subject, &[("audience", "scouting-api")])
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // The subject had players:read and players:write; the actor may only players:write.
    assert_eq!(body["scope"], "players:write");
    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = decode_unverified(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], USERNAME);
    assert_eq!(claims["aud"], "scouting-api");
    assert_eq!(claims["client_id"], PLAYERS_ID);
    assert_eq!(claims["act"], json!({"sub": PLAYERS_ID}));
    assert_eq!(claims["scope"], "players:write");
    // Capped at the subject token's expiry, not a full lifetime from now.
    assert_eq!(claims["exp"], subject_claims["exp"]);
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(
        expires_in <= subject_claims["exp"].as_i64().unwrap() - now_secs() + 1,
        "{expires_in}"
    );

    // The scouting API accepts it for the subject; introspection names the actor.
    let scouting = spawn_resource_api_with(&auth.address, |settings| {
        settings.audience = "scouting-api".into();
    })
    .await;
    assert_eq!(
        scouting.create(Some(token), &new_player(41)).await.status(),
        201
    );
    let introspection = introspect(&auth, PLAYERS, token).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["sub"], USERNAME);
    assert_eq!(introspection["act"], json!({"sub": PLAYERS_ID}));
    assert!(introspection.get("username").is_none(), "{introspection}");

    let metadata = auth
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(TOKEN_EXCHANGE)),
        "{metadata}"
    );
}

#[tokio::test]
async fn a_second_hop_nests_the_first_actor_and_keeps_the_subject() {
    let (auth, _db) = server().await;
    let subject = auth.user_token().await;
    let first = auth.exchange(PLAYERS, &subject, &[]).await;
    assert_eq!(first.status(), 200, "the first exchange's default target");
    let first: Value = first.json().await.unwrap();
    let first = first["access_token"].as_str().unwrap();
    assert_eq!(decode_unverified(first).1["aud"], "scouting-api");

    let second = auth
        .exchange(SCOUTING, first, &[("resource", "stats-api")])
        .await;

    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    let claims = decode_unverified(second["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["sub"], USERNAME);
    assert_eq!(claims["aud"], "stats-api");
    assert_eq!(claims["client_id"], SCOUTING_ID);
    assert_eq!(
        claims["act"],
        json!({"sub": SCOUTING_ID, "act": {"sub": PLAYERS_ID}})
    );
    // Still no wider than the first hop's players:write, though scouting may players:read.
    assert_eq!(claims["scope"], "players:write");
}

#[tokio::test]
async fn malformed_exchanges_are_invalid_request() {
    let (auth, _db) = server().await;
    let subject = auth.user_token().await;
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        ("no subject_token", vec![("grant_type", TOKEN_EXCHANGE)]),
        (
            "no subject_token_type",
            vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
            ],
        ),
        (
            "a refresh token type",
            vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
        ),
        (
            "an actor_token",
            vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token", subject.as_str()),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        (
            "a requested id_token",
            vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        ),
    ];
    for (what, form) in cases {
        let response = auth.token_basic(PLAYERS_ID, PLAYERS_SECRET, &form).await;
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        assert!(
            !body.to_string().contains(&subject),
            "{what}: the token is never echoed"
        );
    }
}

#[tokio::test]
async fn subject_tokens_that_are_not_live_tokens_for_the_actors_api_are_refused() {
    let (auth, _db) = server().await;
    let (stranger, _stranger_db) = server().await;

    // Not a JWT; another issuer's; meant for another API (scouting-api, not players-api).
    let foreign = stranger.access_token().await;
    let elsewhere = auth
        .access_token_for(CLIENT_ID, CLIENT_SECRET, &[("audience", "scouting-api")])
        .await;
    for token in ["not-a-token", foreign.as_str(), elsewhere.as_str()] {
        let response = auth.exchange(PLAYERS, token, &[]).await;
        assert_oauth_error_code(response, 400, "invalid_request").await;
    }

    // Revoked by its own client: refused from then on.
    let own = auth.access_token().await;
    assert_eq!(auth.exchange(PLAYERS, &own, &[]).await.status(), 200);
    let revoked = auth.revoke(CLIENT_ID, CLIENT_SECRET, &own).await;
    assert_eq!(revoked.status(), 200);
    assert_oauth_error_code(
        auth.exchange(PLAYERS, &own, &[]).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn an_expired_subject_token_is_refused() {
    let (auth, _db) = server_with(|settings| settings.token_ttl_secs = 1).await;
    let subject = auth.access_token().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let response = auth.exchange(PLAYERS, &subject, &[]).await;

    assert_oauth_error_code(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn exchanges_beyond_what_the_actor_is_granted_are_refused_with_their_codes() {
    let (auth, _db) = server().await;
    let subject = auth.user_token().await;

    // Targets it may not exchange to: its own API, an unknown one, two that disagree.
    for target in [
        vec![("audience", "players-api")],
        vec![("resource", "billing-api")],
        vec![("resource", "scouting-api"), ("audience", "stats-api")],
    ] {
        let response = auth.exchange(PLAYERS, &subject, &target).await;
        assert_oauth_error_code(response, 400, "invalid_target").await;
    }
    // Scopes beyond the subject's or the actor's.
    for scope in ["players:read", "squad:admin", "players:write profile"] {
        let response = auth.exchange(PLAYERS, &subject, &[("scope", scope)]).await;
        assert_oauth_error_code(response, 400, "invalid_scope").await;
    }
    // A client without the grant, and a subject token the actor shares no scope with.
    let response = auth
        .exchange((READER_ID, READER_SECRET), &subject, &[])
        .await;
    assert_oauth_error_code(response, 400, "unauthorized_client").await;
    let reader = auth.access_token_for(READER_ID, READER_SECRET, &[]).await;
    let response = auth.exchange(PLAYERS, &reader, &[]).await;
    assert_oauth_error_code(response, 400, "invalid_scope").await;
    // A wrong secret is still invalid_client, before anything about the subject token.
    let response = auth
        .exchange((PLAYERS_ID, "wrong-secret-0000"), &subject, &[])
        .await;
    assert_oauth_error_code(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn exchanging_clients_that_could_grow_are_a_configuration_error() {
    let base = || {
        exchanger(
            PLAYERS_ID,
            PLAYERS_SECRET,
            "players-api",
            &["players:write"],
            "scouting-api",
        )
    };
    let cases = [
        (
            "exchange_to without the grant",
            BootstrapClient {
                grant_types: vec!["client_credentials".into()],
                ..base()
            },
            "exchange_to",
        ),
        (
            "the grant without exchange_to",
            BootstrapClient {
                exchange_to: Vec::new(),
                ..base()
            },
            "exchange_to",
        ),
        (
            "two audiences: which API is it?",
            BootstrapClient {
                audiences: vec!["players-api".into(), "billing-api".into()],
                ..base()
            },
            "audiences",
        ),
        (
            "exchanging into its own API",
            BootstrapClient {
                exchange_to: vec!["scouting-api".into(), "players-api".into()],
                ..base()
            },
            "exchange_to",
        ),
    ];
    for (what, client, field) in cases {
        let db = TestDb::new().await;
        let mut settings = auth_settings(&db, &new_kek());
        settings.clients.push(client);

        let err = match auth_server::startup::Application::build(settings).await {
            Ok(_) => panic!("{what}: accepted"),
            Err(err) => err.to_string(),
        };

        assert!(err.contains(field), "{what}: {err}");
    }
}

#[tokio::test]
async fn a_client_may_not_exchange_its_own_token_into_more_audiences() {
    let (auth, _db) = server_with(|settings| {
        settings.clients.push(BootstrapClient {
            grant_types: vec!["client_credentials".into(), "token-exchange".into()],
            ..exchanger(
                "hybrid",
                "hybrid-secret-0123",
                "players-api",
                &["players:write"],
                "scouting-api",
            )
        });
    })
    .await;
    let own = auth
        .access_token_for("hybrid", "hybrid-secret-0123", &[])
        .await;

    let response = auth
        .exchange(("hybrid", "hybrid-secret-0123"), &own, &[])
        .await;

    assert_oauth_error_code(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_refresh_token_is_not_a_subject_token_and_the_subjects_client_cannot_see_the_new_one() {
    let (auth, _db) = server().await;
    let response = auth
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "password"),
                ("username", USERNAME),
                ("password", PASSWORD),
            ],
        )
        .await;
    let body: Value = response.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let access = body["access_token"].as_str().unwrap();

    let response = auth.exchange(PLAYERS, refresh, &[]).await;
    assert_oauth_error_code(response, 400, "invalid_request").await;
    let exchanged: Value = auth
        .exchange(PLAYERS, access, &[])
        .await
        .json()
        .await
        .unwrap();
    let exchanged = exchanged["access_token"].as_str().unwrap();
    // squad-app's audience is players-api only: the scouting token is not its to inspect.
    let seen = introspect(&auth, (APP_ID, APP_SECRET), exchanged).await;
    assert_eq!(seen, json!({"active": false}));
}

#[tokio::test]
async fn narrowing_exchange_to_in_the_configuration_takes_effect_at_the_next_start() {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    settings.clients.push(BootstrapClient {
        exchange_to: vec!["scouting-api".into(), "stats-api".into()],
        ..exchanger(
            PLAYERS_ID,
            PLAYERS_SECRET,
            "players-api",
            &["players:write"],
            "scouting-api",
        )
    });
    let auth = crate::helpers::start_with_own_issuer(settings.clone()).await;
    let subject = auth.access_token().await;
    let widened = auth
        .exchange(PLAYERS, &subject, &[("audience", "stats-api")])
        .await;
    assert_eq!(widened.status(), 200);
    auth.stop().await;

    settings.clients.last_mut().unwrap().exchange_to = vec!["scouting-api".into()];
    let auth = crate::helpers::start_with_own_issuer(settings).await;
    let subject = auth.access_token().await;

    let response = auth
        .exchange(PLAYERS, &subject, &[("audience", "stats-api")])
        .await;

    assert_oauth_error_code(response, 400, "invalid_target").await;
    assert_eq!(auth.exchange(PLAYERS, &subject, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_client_added_with_exchange_to_exchanges_and_is_listed_so() {
    let (auth, _db) = server().await;
    let printed = crate::helpers::cli(
        &auth.settings,
        &[
            "clients",
            "add",
            "--id",
            "billing",
            "--scope",
            "players:write",
            "--audience",
            "players-api",
            "--exchange-to",
            "scouting-api",
        ],
    )
    .await
    .unwrap();
    let secret = crate::helpers::secret_from(&printed);
    let subject = auth.access_token().await;

    let response = auth.exchange(("billing", &secret), &subject, &[]).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = decode_unverified(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["act"], json!({"sub": "billing"}));
    assert_eq!(claims["sub"], CLIENT_ID);
    let listed = crate::helpers::cli(&auth.settings, &["clients", "list"])
        .await
        .unwrap();
    let line = listed.lines().find(|l| l.starts_with("billing")).unwrap();
    assert!(
        line.contains("token-exchange") && line.trim_end().ends_with("scouting-api"),
        "{listed}"
    );
    // Only the grants it was given: no client credentials of its own.
    let own = auth
        .token_basic("billing", &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error_code(own, 400, "unauthorized_client").await;
}

/// The players API itself calls the scouting API for its caller: it exchanges the caller's
/// token (its `[scouting]` client) and creates the player there. Each refusal has its status:
/// no token 401, no `players:write` 403, a caller token the issuer will not exchange (revoked)
/// 403 `delegation_refused`, a squad number the scouting API has 409, a wrong client of the
/// players API's own 502, no `[scouting]` 501.
#[tokio::test]
async fn the_players_api_refers_a_player_to_the_scouting_api_on_its_callers_behalf() {
    let (auth, _db) = server().await;
    let scouting = spawn_resource_api_with(&auth.address, |settings| {
        settings.audience = "scouting-api".into();
    })
    .await;
    let with_scouting = |secret: &str| resource_api::config::ScoutingSettings {
        url: scouting.address.clone(),
        audience: "scouting-api".into(),
        client_id: PLAYERS_ID.into(),
        client_secret: secret.into(),
        client_secret_file: None,
        token_url: None,
        public_url: None,
        allow_insecure_http: false,
        timeout_secs: 5,
    };
    let players = spawn_resource_api_with(&auth.address, |settings| {
        settings.scouting = Some(with_scouting(PLAYERS_SECRET));
    })
    .await;
    let refer = async |api: &crate::api_helpers::ResourceApi, token: Option<&str>, n: u32| {
        let path = format!("/players/squadnumber/{n}/scouting");
        api.send(reqwest::Method::POST, &path, token, None).await
    };
    let subject = auth.user_token().await;
    assert_eq!(
        players
            .create(Some(&subject), &new_player(77))
            .await
            .status(),
        201
    );
    assert!(scouting.player(77).await.is_none());

    let referred = refer(&players, Some(&subject), 77).await;
    assert_eq!(referred.status(), 201);
    let location = referred.headers()["location"].to_str().unwrap().to_owned();
    let copy: Value = referred.json().await.unwrap();
    assert_eq!(copy["squadNumber"], 77);
    assert_eq!(
        location,
        scouting.url(&format!("/players/{}", copy["id"].as_str().unwrap()))
    );
    let there = scouting
        .player(77)
        .await
        .expect("the scouting API has it now");
    assert_eq!(there["id"], copy["id"]);
    assert_eq!(there["lastName"], new_player(77)["lastName"]);

    problem(refer(&players, Some(&subject), 77).await, 409, "conflict").await;
    problem(refer(&players, Some(&subject), 55).await, 404, "not_found").await;
    problem(refer(&players, None, 77).await, 401, "unauthorized").await;
    let reader = auth.access_token_for(READER_ID, READER_SECRET, &[]).await;
    problem(
        refer(&players, Some(&reader), 77).await,
        403,
        "insufficient_scope",
    )
    .await;

    // Revoked at the issuer: the players API still takes the JWT, the exchange does not.
    let revoked = auth.user_token().await;
    let response = auth.revoke(APP_ID, APP_SECRET, &revoked).await;
    assert_eq!(response.status(), 200);
    let refused = refer(&players, Some(&revoked), 77).await;
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    // No other scope would help: a challenge without an error.
    assert!(
        challenge.starts_with("Bearer realm=") && !challenge.contains("error="),
        "{challenge}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "delegation_refused", "{body}");
    assert!(
        !body.to_string().contains(&revoked),
        "the token is never echoed"
    );

    // The players API's own client refused: a bad gateway, the cause only in its log.
    let misconfigured = spawn_resource_api_with(&auth.address, |settings| {
        settings.scouting = Some(with_scouting("not-the-secret"));
    })
    .await;
    let response = refer(&misconfigured, Some(&subject), 1).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway");

    // Configured for an API its client may not exchange into: the issuer's invalid_target is
    // this side's fault, a 502 too, not the caller's.
    let wrong_target = spawn_resource_api_with(&auth.address, |settings| {
        let mut scouting = with_scouting(PLAYERS_SECRET);
        scouting.audience = "stats-api".into();
        settings.scouting = Some(scouting);
    })
    .await;
    problem(
        refer(&wrong_target, Some(&subject), 1).await,
        502,
        "bad_gateway",
    )
    .await;

    let unconfigured = spawn_resource_api_with(&auth.address, |_| {}).await;
    problem(
        refer(&unconfigured, Some(&subject), 1).await,
        501,
        "scouting_not_configured",
    )
    .await;
}

/// Asserts a players-API problem answer: the status and its `error` code.
async fn problem(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status(), status, "status for {error}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["status"], status, "{body}");
}
