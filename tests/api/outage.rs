//! The database goes away (a proxy the test controls cuts every connection and refuses new
//! ones) and comes back: client-credentials tokens keep coming from memory and verify against
//! the JWKS; what needs the database answers 503 `temporarily_unavailable` at once; readiness
//! stays up and says degraded; everything recovers by itself. PostgreSQL only (a SQLite file
//! does not go away): run with `make test-postgres`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    APP_ID, APP_SECRET, AuthServer, CLIENT_ID, CLIENT_SECRET, PASSWORD, READER_ID, READER_SECRET,
    TestDb, USERNAME, auth_settings, new_kek, start_with_own_issuer,
};
use crate::proxy::Proxy;

/// A PostgreSQL test database behind a proxy, and an auth-server on the proxy.
async fn behind_a_proxy(max_stale_secs: u32) -> Option<(AuthServer, Proxy, TestDb)> {
    let db = TestDb::new().await;
    if !db.url.starts_with("postgres") {
        eprintln!("outage tests need PostgreSQL (TEST_DATABASE_URL): skipped on SQLite");
        return None;
    }
    let url = url::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let upstream = tokio::net::lookup_host(upstream)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let mut proxied = url.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.address.port())).unwrap();

    let mut settings = auth_settings(&db, &new_kek());
    settings.database_url = proxied.to_string();
    settings.max_stale_secs = max_stale_secs;
    settings.client_sync_interval_ms = 200;
    settings.db_timeout_ms = 500;
    let server = start_with_own_issuer(settings).await;
    Some((server, proxy, db))
}

fn client_credentials(server: &AuthServer) -> reqwest::RequestBuilder {
    server
        .http
        .post(server.url("/auth/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
}

fn password_grant(server: &AuthServer) -> reqwest::RequestBuilder {
    server
        .http
        .post(server.url("/auth/token"))
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
}

/// Asserts a quick 503 `temporarily_unavailable` with `Retry-After` in the RFC 6749 shape.
async fn assert_quick_503(what: &str, request: reqwest::RequestBuilder) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 503, "{what}");
    assert!(response.headers().contains_key("retry-after"), "{what}");
    assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    // Not a pool wait of seconds: the breaker answers at once (generous for a loaded machine).
    assert!(took < Duration::from_secs(1), "{what} took {took:?}");
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(15), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn client_credentials_survive_a_database_outage_and_everything_else_recovers() {
    let Some((server, proxy, _db)) = behind_a_proxy(60).await else {
        return;
    };
    // Before: the client is used (so it is in memory), the password grant works.
    let before: Value = client_credentials(&server)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = password_grant(&server).send().await.unwrap();
    assert_eq!(refresh.status(), 200);
    let refresh: Value = refresh.json().await.unwrap();
    let refresh_token = refresh["refresh_token"].as_str().unwrap().to_owned();

    let outages_before = server.counter("auth_database_outages_total").await;
    proxy.cut();
    // The first round trip after the cut fails and opens the breaker.
    wait_for("readiness never reported the outage", async || {
        let ready: Value = server.get_json("/health/ready").await;
        ready["status"] == "degraded"
    })
    .await;

    // Client credentials keep coming, and verify with discovery and the keys published now.
    for _ in 0..20 {
        let response = client_credentials(&server).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let token: Value = response.json().await.unwrap();
        let token = token["access_token"].as_str().unwrap();
        crate::discovery::verify_independently(&server, token, "players-api").await;
    }
    assert_ne!(before["access_token"], Value::Null);

    // What needs the database says so at once.
    assert_quick_503("password grant", password_grant(&server)).await;
    assert_quick_503(
        "refresh grant",
        server
            .http
            .post(server.url("/auth/token"))
            .basic_auth(APP_ID, Some(APP_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
            ]),
    )
    .await;
    let access = before["access_token"].as_str().unwrap();
    assert_quick_503(
        "introspection",
        server
            .http
            .post(server.url("/auth/introspect"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", access)]),
    )
    .await;
    assert_quick_503(
        "revocation",
        server
            .http
            .post(server.url("/auth/revoke"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", access)]),
    )
    .await;
    // A client this instance never saw cannot be authenticated without the database.
    assert_quick_503(
        "a client not in memory",
        server
            .http
            .post(server.url("/auth/token"))
            .basic_auth(READER_ID, Some(READER_SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;

    // Readiness keeps the instance in service and says why it is degraded; so does a metric.
    let ready = server
        .http
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["database"], "unreachable", "{ready}");
    assert!(ready["stale_secs"].is_u64(), "{ready}");
    // The recorder is one per process and the other tests' servers set the gauges too, so the
    // counter (which only grows) is what this test can rely on.
    assert!(server.counter("auth_database_outages_total").await > outages_before);

    // The CLI says the database is unreachable, quickly, instead of waiting.
    let started = Instant::now();
    let err = crate::helpers::cli(&server.settings, &["clients", "list"])
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");

    proxy.restore().await;
    wait_for("the password grant did not recover", async || {
        password_grant(&server).send().await.unwrap().status() == 200
    })
    .await;
    let ready: Value = server.get_json("/health/ready").await;
    assert_eq!(ready["status"], "ok", "{ready}");
    let reader = server
        .http
        .post(server.url("/auth/token"))
        .basic_auth(READER_ID, Some(READER_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), 200, "the client not in memory works again");
}

#[tokio::test]
async fn with_max_stale_secs_zero_client_credentials_stop_as_soon_as_the_database_is_gone() {
    let Some((server, proxy, _db)) = behind_a_proxy(0).await else {
        return;
    };
    assert_eq!(
        client_credentials(&server).send().await.unwrap().status(),
        200
    );

    proxy.cut();
    wait_for("readiness never dropped", async || {
        server
            .http
            .get(server.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            == 503
    })
    .await;

    assert_quick_503("client credentials", client_credentials(&server)).await;

    proxy.restore().await;
    wait_for("client credentials did not recover", async || {
        client_credentials(&server).send().await.unwrap().status() == 200
    })
    .await;
}
