//! Issue 4: the password grant, refresh tokens with rotation and reuse detection, introspection,
//! revocation and throttling, end to end.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    APP_ID, APP_SECRET, AuthServer, CLIENT_ID, CLIENT_SECRET, PASSWORD, READER_ID, READER_SECRET,
    USERNAME, assert_oauth_error_code, cli, cli_with_password, decode_unverified, secret_from,
    spawn_auth_server, spawn_auth_server_with,
};

async fn password_grant(
    server: &AuthServer,
    username: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ];
    form.extend_from_slice(extra);
    server.token_basic(APP_ID, APP_SECRET, &form).await
}

async fn refresh(server: &AuthServer, refresh_token: &str) -> reqwest::Response {
    server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn introspect(server: &AuthServer, id: &str, secret: &str, token: &str) -> Value {
    let response = server
        .http
        .post(server.url("/auth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    ok_json(response).await
}

#[tokio::test]
async fn the_password_grant_issues_a_user_token_and_a_refresh_token() {
    let (server, _db) = spawn_auth_server().await;

    let body = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;

    let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], USERNAME);
    assert_eq!(claims["client_id"], APP_ID);
    // The client may have players:read players:write squad:admin, the user players:read
    // players:write profile: the token gets what both may have.
    assert_eq!(body["scope"], "players:read players:write");
    assert_eq!(claims["scope"], "players:read players:write");
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
}

#[tokio::test]
async fn a_requested_scope_must_lie_within_what_client_and_user_share() {
    let (server, _db) = spawn_auth_server().await;

    let narrowed =
        ok_json(password_grant(&server, USERNAME, PASSWORD, &[("scope", "players:read")]).await)
            .await;
    assert_eq!(narrowed["scope"], "players:read");

    for beyond in ["squad:admin", "profile"] {
        let response = password_grant(&server, USERNAME, PASSWORD, &[("scope", beyond)]).await;
        assert_eq!(
            error_of(response).await,
            (400, "invalid_scope".into()),
            "{beyond}"
        );
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_get_one_identical_answer() {
    let (server, _db) = spawn_auth_server_with(|s| {
        let mut disabled = s.users[0].clone();
        disabled.username = "retired".into();
        disabled.active = false;
        s.users.push(disabled);
    })
    .await;

    let mut answers = Vec::new();
    for (user, password) in [
        (USERNAME, "wrong-password"),
        ("nobody", PASSWORD),
        ("retired", PASSWORD),
    ] {
        let response = password_grant(&server, user, password, &[]).await;
        assert_eq!(response.status(), 400, "{user}");
        let body: Value = response.json().await.unwrap();
        answers.push(body);
    }

    assert_eq!(answers[0]["error"], "invalid_grant");
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
}

#[tokio::test]
async fn the_password_grant_needs_username_and_password() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[("grant_type", "password"), ("username", USERNAME)],
        )
        .await;

    assert_eq!(error_of(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_client_without_the_password_grant_is_refused() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .token_basic(
            CLIENT_ID,
            CLIENT_SECRET,
            &[
                ("grant_type", "password"),
                ("username", USERNAME),
                ("password", PASSWORD),
            ],
        )
        .await;

    assert_eq!(
        error_of(response).await,
        (400, "unauthorized_client".into())
    );
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_gets_no_refresh_token() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.clients[2].grant_types = vec!["password".into()];
    })
    .await;

    let body = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;

    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_and_the_old_one_stops_working() {
    let (server, _db) = spawn_auth_server().await;
    let first = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let old = first["refresh_token"].as_str().unwrap();

    let second = ok_json(refresh(&server, old).await).await;

    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        decode_unverified(second["access_token"].as_str().unwrap()).1["sub"],
        USERNAME
    );
    assert_eq!(second["scope"], "players:read players:write");
    assert_eq!(
        error_of(refresh(&server, old).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_chain() {
    let (server, _db) = spawn_auth_server().await;
    let first = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let stolen = first["refresh_token"].as_str().unwrap().to_owned();
    let legit = ok_json(refresh(&server, &stolen).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The attacker replays the spent token: refused, and the chain dies with it.
    assert_eq!(
        error_of(refresh(&server, &stolen).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error_of(refresh(&server, &legit).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        introspect(&server, APP_ID, APP_SECRET, &legit).await["active"],
        false
    );

    // Another login's chain is untouched.
    let other = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    ok_json(refresh(&server, other["refresh_token"].as_str().unwrap()).await).await;
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
    let (server, _db) = spawn_auth_server().await;
    let first =
        ok_json(password_grant(&server, USERNAME, PASSWORD, &[("scope", "players:read")]).await)
            .await;
    let token = first["refresh_token"].as_str().unwrap();

    let widened = server
        .token_basic(
            APP_ID,
            APP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("scope", "players:write"),
            ],
        )
        .await;

    assert_eq!(error_of(widened).await, (400, "invalid_scope".into()));
}

#[tokio::test]
async fn a_refresh_token_belongs_to_its_client() {
    let (server, _db) = spawn_auth_server_with(|s| {
        let mut twin = s.clients[2].clone();
        twin.client_id = "other-app".into();
        s.clients.push(twin);
    })
    .await;
    let first = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let token = first["refresh_token"].as_str().unwrap();

    let response = server
        .token_basic(
            "other-app",
            APP_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await;

    assert_eq!(error_of(response).await, (400, "invalid_grant".into()));
    ok_json(refresh(&server, token).await).await;
}

#[tokio::test]
async fn a_disabled_user_loses_their_refresh_tokens_at_once_and_stays_disabled() {
    let (server, _db) = spawn_auth_server().await;
    cli_with_password(
        &server.settings,
        &["users", "add", "emi", "--scope", "players:read"],
        "dibu-martinez",
    )
    .await
    .unwrap();
    let first = ok_json(password_grant(&server, "emi", "dibu-martinez", &[]).await).await;
    let token = first["refresh_token"].as_str().unwrap();

    let printed = cli(&server.settings, &["users", "disable", "emi"])
        .await
        .unwrap();
    assert!(printed.contains("revoked 1"), "{printed}");

    assert_eq!(
        error_of(refresh(&server, token).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        introspect(&server, APP_ID, APP_SECRET, token).await["active"],
        false
    );
    // Another CLI command and a restart leave the user disabled.
    let listed = cli(&server.settings, &["users", "list"]).await.unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("emi") && l.contains("false")),
        "{listed}"
    );
    let server = restart(server).await;
    let login = password_grant(&server, "emi", "dibu-martinez", &[]).await;
    assert_eq!(error_of(login).await, (400, "invalid_grant".into()));

    cli(&server.settings, &["users", "enable", "emi"])
        .await
        .unwrap();
    ok_json(password_grant(&server, "emi", "dibu-martinez", &[]).await).await;
}

/// Stops `server` and starts it again on the same port, database and configuration.
async fn restart(server: AuthServer) -> AuthServer {
    let settings = server.settings.clone();
    server.stop().await;
    AuthServer::start(settings).await
}

#[tokio::test]
async fn the_cli_refuses_to_change_what_the_configuration_manages() {
    let (server, _db) = spawn_auth_server().await;

    for args in [
        &["users", "disable", USERNAME][..],
        &["users", "remove", USERNAME][..],
        &["clients", "rotate-secret", CLIENT_ID][..],
        &["clients", "remove", CLIENT_ID][..],
    ] {
        let err = cli(&server.settings, args).await.unwrap_err();
        assert!(
            err.contains("managed by the configuration file"),
            "{args:?}: {err}"
        );
    }

    // Nothing changed: the configured user and client still work after a restart.
    let server = restart(server).await;
    ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    server.access_token().await;
}

#[tokio::test]
async fn a_cli_rotated_secret_stays_rotated_across_restarts() {
    let (server, _db) = spawn_auth_server().await;
    let added = cli(
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
    let old = secret_from(&added);
    cli(&server.settings, &["clients", "rotate-secret", "svc"])
        .await
        .unwrap();

    let server = restart(server).await;

    let form = [("grant_type", "client_credentials")];
    let with_old = server.token_basic("svc", &old, &form).await;
    assert_oauth_error_code(with_old, 401, "invalid_client").await;
}

#[tokio::test]
async fn users_added_through_the_cli_log_in_with_the_password_typed_at_the_prompt() {
    let (server, _db) = spawn_auth_server().await;

    cli_with_password(
        &server.settings,
        &["users", "add", "angel", "--scope", "players:read"],
        "fideo-di-maria",
    )
    .await
    .unwrap();
    let listed = cli(&server.settings, &["users", "list"]).await.unwrap();

    assert!(
        listed.contains("angel") && !listed.contains("fideo"),
        "{listed}"
    );
    let body = ok_json(password_grant(&server, "angel", "fideo-di-maria", &[]).await).await;
    assert_eq!(body["scope"], "players:read");
    let short = cli_with_password(
        &server.settings,
        &["users", "add", "x", "--scope", "a"],
        "short",
    )
    .await;
    assert!(short.unwrap_err().contains("8 characters"));
    cli(&server.settings, &["users", "remove", "angel"])
        .await
        .unwrap();
    let gone = password_grant(&server, "angel", "fideo-di-maria", &[]).await;
    assert_eq!(error_of(gone).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn introspection_describes_live_tokens_of_every_kind() {
    let (server, _db) = spawn_auth_server().await;
    let machine = server.access_token().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let user_access = login["access_token"].as_str().unwrap();
    let user_refresh = login["refresh_token"].as_str().unwrap();

    let m = introspect(&server, READER_ID, READER_SECRET, &machine).await;
    assert_eq!(m["active"], true);
    assert_eq!(m["client_id"], CLIENT_ID);
    assert_eq!(m["sub"], CLIENT_ID);
    assert!(m.get("username").is_none());
    assert_eq!(m["token_type"], "Bearer");
    assert_eq!(m["aud"], "players-api");
    assert_eq!(m["iss"], server.address);
    assert!(m["exp"].as_i64().unwrap() > m["iat"].as_i64().unwrap());

    let u = introspect(&server, READER_ID, READER_SECRET, user_access).await;
    assert_eq!(
        (u["active"].clone(), u["username"].clone(), u["sub"].clone()),
        (true.into(), USERNAME.into(), USERNAME.into())
    );
    assert_eq!(u["scope"], "players:read players:write");

    let r = introspect(&server, APP_ID, APP_SECRET, user_refresh).await;
    assert_eq!(r["active"], true);
    assert_eq!(r["token_type"], "refresh_token");
    assert_eq!(r["username"], USERNAME);
    assert_eq!(r["client_id"], APP_ID);
}

#[tokio::test]
async fn introspection_describes_an_access_token_only_to_its_client_and_its_audience() {
    let (server, _db) = spawn_auth_server_with(|s| {
        let mut outsider = s.clients[1].clone();
        outsider.client_id = "billing".into();
        outsider.audiences = vec!["billing-api".into()];
        s.clients.push(outsider);
    })
    .await;
    let token = server.access_token().await;

    assert_eq!(
        introspect(&server, CLIENT_ID, CLIENT_SECRET, &token).await["active"],
        true
    );
    assert_eq!(
        introspect(&server, READER_ID, READER_SECRET, &token).await["active"],
        true
    );
    assert_eq!(
        introspect(&server, "billing", READER_SECRET, &token).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn a_refresh_chain_ends_at_its_maximum_age_however_often_it_is_refreshed() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.refresh_token_ttl_secs = 60;
        s.refresh_chain_max_secs = 60;
    })
    .await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let first = login["refresh_token"].as_str().unwrap();
    let chain_end = introspect(&server, APP_ID, APP_SECRET, first).await["exp"]
        .as_i64()
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = ok_json(refresh(&server, first).await).await;
    let next = next["refresh_token"].as_str().unwrap();

    let exp = introspect(&server, APP_ID, APP_SECRET, next).await["exp"]
        .as_i64()
        .unwrap();
    assert_eq!(
        exp, chain_end,
        "a refresh does not extend the chain past its end"
    );
}

#[tokio::test]
async fn introspection_says_only_inactive_for_anything_not_live() {
    let (server, _db) = spawn_auth_server_with(|s| s.token_ttl_secs = 60).await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let refresh_token = login["refresh_token"].as_str().unwrap();
    let mut tampered = server.access_token().await;
    tampered.push('x');

    for token in ["garbage", "", tampered.as_str(), "a.b.c"] {
        if token.is_empty() {
            continue;
        }
        assert_eq!(
            introspect(&server, READER_ID, READER_SECRET, token).await,
            serde_json::json!({"active": false})
        );
    }
    // Another client's refresh token is not theirs to inspect.
    assert_eq!(
        introspect(&server, READER_ID, READER_SECRET, refresh_token).await,
        serde_json::json!({"active": false})
    );
    // A spent refresh token is inactive.
    ok_json(refresh(&server, refresh_token).await).await;
    assert_eq!(
        introspect(&server, APP_ID, APP_SECRET, refresh_token).await["active"],
        false
    );
}

#[tokio::test]
async fn introspection_and_revocation_require_client_authentication() {
    let (server, _db) = spawn_auth_server().await;
    let token = server.access_token().await;

    for path in ["/auth/introspect", "/auth/revoke"] {
        let anonymous = server
            .http
            .post(server.url(path))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            anonymous.headers()["www-authenticate"],
            r#"Basic realm="auth-server""#
        );
        assert_eq!(
            error_of(anonymous).await,
            (401, "invalid_client".into()),
            "{path}"
        );
        let wrong = server
            .http
            .post(server.url(path))
            .basic_auth(CLIENT_ID, Some("wrong"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(wrong).await,
            (401, "invalid_client".into()),
            "{path}"
        );
        let no_token = server
            .http
            .post(server.url(path))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(no_token).await,
            (400, "invalid_request".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn revoking_a_refresh_token_kills_its_chain() {
    let (server, _db) = spawn_auth_server().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let first = login["refresh_token"].as_str().unwrap();
    let second = ok_json(refresh(&server, first).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = server.revoke(APP_ID, APP_SECRET, first).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        error_of(refresh(&server, &second).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn revoking_an_access_token_makes_introspection_report_it_inactive() {
    let (server, _db) = spawn_auth_server().await;
    let token = server.access_token().await;
    assert_eq!(
        introspect(&server, READER_ID, READER_SECRET, &token).await["active"],
        true
    );

    let response = server.revoke(CLIENT_ID, CLIENT_SECRET, &token).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        introspect(&server, READER_ID, READER_SECRET, &token).await["active"],
        false
    );
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_tokens_and_refuses_other_clients_tokens() {
    let (server, _db) = spawn_auth_server().await;
    let token = server.access_token().await;

    assert_eq!(
        server
            .revoke(CLIENT_ID, CLIENT_SECRET, "no-such-token")
            .await
            .status(),
        200
    );
    let foreign = server.revoke(READER_ID, READER_SECRET, &token).await;
    assert_eq!(error_of(foreign).await, (400, "unauthorized_client".into()));
    assert_eq!(
        introspect(&server, READER_ID, READER_SECRET, &token).await["active"],
        true
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_with_retry_after_and_recover() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.throttle.max_failures = 3;
        s.throttle.base_backoff_secs = 1;
        s.throttle.max_backoff_secs = 2;
        s.throttle.window_secs = 2;
    })
    .await;

    for _ in 0..3 {
        let response = password_grant(&server, USERNAME, "wrong-password", &[]).await;
        assert_eq!(error_of(response).await, (400, "invalid_grant".into()));
    }
    let throttled = password_grant(&server, USERNAME, PASSWORD, &[]).await;
    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        error_of(throttled).await,
        (429, "temporarily_unavailable".into())
    );

    // Another user is not affected.
    let other = password_grant(&server, "someone-else", "whatever-password", &[]).await;
    assert_eq!(other.status(), 400);

    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(200)).await;
    ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
}

#[tokio::test]
async fn failures_from_another_address_never_lock_a_client_or_user_out() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.throttle.max_failures = 2;
        s.throttle.max_backoff_secs = 60;
        s.throttle.base_backoff_secs = 30;
    })
    .await;
    let attacker = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let token_url = server.url("/auth/token");
    for _ in 0..4 {
        let client_guess = attacker
            .post(&token_url)
            .basic_auth(CLIENT_ID, Some("guess"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert!([401, 429].contains(&client_guess.status().as_u16()));
        let password_guess = attacker
            .post(&token_url)
            .basic_auth(APP_ID, Some(APP_SECRET))
            .form(&[
                ("grant_type", "password"),
                ("username", USERNAME),
                ("password", "guess"),
            ])
            .send()
            .await
            .unwrap();
        assert!([400, 429].contains(&password_guess.status().as_u16()));
    }

    // The attacker's address is blocked; the real client and user, elsewhere, are not.
    let blocked = attacker
        .post(&token_url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 429);
    server.access_token().await;
    ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
}

#[tokio::test]
async fn repeated_failed_client_authentications_are_throttled_per_client_and_address() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.throttle.max_failures = 2;
        s.throttle.max_failures_per_address = 4;
        s.throttle.base_backoff_secs = 1;
        s.throttle.max_backoff_secs = 1;
        s.throttle.window_secs = 1;
    })
    .await;
    let form = [("grant_type", "client_credentials")];

    for _ in 0..2 {
        assert_eq!(
            server.token_basic(CLIENT_ID, "wrong", &form).await.status(),
            401
        );
    }
    let throttled = server.token_basic(CLIENT_ID, CLIENT_SECRET, &form).await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));

    // Two more failures from this address, on other clients, block the address as a whole.
    for _ in 0..2 {
        server.token_basic(READER_ID, "wrong", &form).await;
    }
    assert_eq!(
        server.token_basic(APP_ID, APP_SECRET, &form).await.status(),
        429
    );

    tokio::time::sleep(Duration::from_millis(2300)).await;
    server.access_token().await;
}

/// Restarts `server` on the same port and database with `change` applied to its settings.
async fn restart_with(
    server: AuthServer,
    change: impl FnOnce(&mut auth_server::Settings),
) -> AuthServer {
    let mut settings = server.settings.clone();
    change(&mut settings);
    server.stop().await;
    AuthServer::start(settings).await
}

#[tokio::test]
async fn a_refresh_chain_dies_once_its_audience_is_taken_from_the_client() {
    let (server, _db) = spawn_auth_server().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let token = login["refresh_token"].as_str().unwrap().to_owned();

    // players-api is taken from the app in the configuration.
    let server = restart_with(server, |s| {
        s.clients[2].audiences = vec!["scouting-api".into()]
    })
    .await;
    assert_eq!(
        error_of(refresh(&server, &token).await).await,
        (400, "invalid_grant".into())
    );

    // Given back, the audience does not revive the chain: it was revoked.
    let server = restart_with(server, |s| {
        s.clients[2].audiences = vec!["players-api".into()]
    })
    .await;
    assert_eq!(
        error_of(refresh(&server, &token).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        introspect(&server, APP_ID, APP_SECRET, &token).await["active"],
        false
    );
}

#[tokio::test]
async fn a_refresh_chain_dies_once_the_client_loses_the_refresh_grant() {
    let (server, _db) = spawn_auth_server().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let token = login["refresh_token"].as_str().unwrap().to_owned();

    let server = restart_with(server, |s| {
        s.clients[2].grant_types = vec!["password".into()]
    })
    .await;
    assert_eq!(
        error_of(refresh(&server, &token).await).await,
        (400, "unauthorized_client".into())
    );

    let server = restart_with(server, |s| {
        s.clients[2].grant_types = vec!["password".into(), "refresh_token".into()]
    })
    .await;
    assert_eq!(
        error_of(refresh(&server, &token).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn a_narrower_access_token_leaves_the_refresh_tokens_scope_as_it_was() {
    let (server, _db) = spawn_auth_server().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    assert_eq!(login["scope"], "players:read players:write");

    let narrow = ok_json(
        server
            .token_basic(
                APP_ID,
                APP_SECRET,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", login["refresh_token"].as_str().unwrap()),
                    ("scope", "players:read"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(narrow["scope"], "players:read");

    // RFC 6749 §6: the new refresh token has the scope of the one it replaced.
    let next = ok_json(refresh(&server, narrow["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(next["scope"], "players:read players:write");
    assert_eq!(
        decode_unverified(next["access_token"].as_str().unwrap()).1["scope"],
        "players:read players:write"
    );
}

#[tokio::test]
async fn a_user_disabled_in_the_configuration_loses_their_refresh_tokens() {
    let (server, _db) = spawn_auth_server().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let token = login["refresh_token"].as_str().unwrap().to_owned();

    let server = restart_with(server, |s| s.users[0].active = false).await;
    let server = restart_with(server, |s| s.users[0].active = true).await;

    // Enabled again, the user must log in again: the old session stays dead.
    assert_eq!(
        error_of(refresh(&server, &token).await).await,
        (400, "invalid_grant".into())
    );
    ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
}

#[tokio::test]
async fn a_password_changed_in_the_configuration_ends_every_session_started_with_the_old_one() {
    let (server, _db) = spawn_auth_server().await;
    let login = ok_json(password_grant(&server, USERNAME, PASSWORD, &[]).await).await;
    let token = login["refresh_token"].as_str().unwrap().to_owned();
    let unchanged = restart_with(server, |_| {}).await;
    // A restart with the same configuration changes nothing.
    let token = ok_json(refresh(&unchanged, &token).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let server = restart_with(unchanged, |s| {
        s.users[0].password = Some("a-brand-new-password".into())
    })
    .await;

    assert_eq!(
        error_of(refresh(&server, &token).await).await,
        (400, "invalid_grant".into())
    );
    ok_json(password_grant(&server, USERNAME, "a-brand-new-password", &[]).await).await;
}

#[tokio::test]
async fn a_client_registered_again_under_a_removed_id_cannot_use_the_old_refresh_tokens() {
    let (server, _db) = spawn_auth_server().await;
    let add = [
        "clients",
        "add",
        "--id",
        "mobile",
        "--scope",
        "players:read",
        "--audience",
        "players-api",
        "--grant-type",
        "password",
        "--grant-type",
        "refresh_token",
    ];
    let secret = secret_from(&cli(&server.settings, &add).await.unwrap());
    let login = ok_json(
        server
            .token_basic(
                "mobile",
                &secret,
                &[
                    ("grant_type", "password"),
                    ("username", USERNAME),
                    ("password", PASSWORD),
                ],
            )
            .await,
    )
    .await;
    let token = login["refresh_token"].as_str().unwrap().to_owned();

    cli(&server.settings, &["clients", "remove", "mobile"])
        .await
        .unwrap();
    let secret = secret_from(&cli(&server.settings, &add).await.unwrap());
    // The newcomer is known to this instance once the change log has reached it.
    let server = restart_with(server, |_| {}).await;

    let response = server
        .token_basic(
            "mobile",
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
        )
        .await;
    assert_eq!(error_of(response).await, (400, "invalid_grant".into()));
}
