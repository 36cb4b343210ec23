//! Where the verifier agrees to fetch keys from: redirects stay within the origin first
//! asked, and plain http is for loopback only (issue 11, finding 4). Real servers on
//! loopback: the test issuer, and a server that redirects.

mod support;

use std::time::Duration;

use serde_json::json;
use support::fixed_server::{Answer, FixedServer};
use token_verifier::{TokenVerifier, VerifierConfig, VerifyError};

fn jwks_of(issuer: &support::TestIssuer) -> String {
    json!({"keys": [issuer.active_key().public_jwk()]}).to_string()
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let issuer = support::issuer().await;
    let redirector = FixedServer::start().await;
    redirector.answer("/jwks.json", Answer::Redirect(issuer.jwks_url()));
    let mut config = VerifierConfig::new(issuer.url(), support::AUDIENCE);
    config.jwks_url = Some(format!("{}/jwks.json", redirector.url));

    let verifier = TokenVerifier::start(config).unwrap();

    assert!(!verifier.wait_until_ready(Duration::from_millis(800)).await);
    assert!(redirector.hits("/jwks.json") >= 1, "the verifier asked");
    assert_eq!(issuer.jwks_fetches(), 0, "and did not follow elsewhere");
    assert!(verifier.stats().failed_fetches >= 1);
    assert_eq!(
        verifier.verify(&support::valid(&issuer).mint()).await,
        Err(VerifyError::UnknownKey)
    );
}

#[tokio::test]
async fn a_redirect_to_another_name_of_the_same_host_is_another_origin() {
    let issuer = support::issuer().await;
    // The issuer's own URL, with `localhost` for `127.0.0.1`: the same machine, another origin.
    let elsewhere = issuer.jwks_url().replace("127.0.0.1", "localhost");
    let redirector = FixedServer::start().await;
    redirector.answer("/jwks.json", Answer::Redirect(elsewhere));
    let mut config = VerifierConfig::new(issuer.url(), support::AUDIENCE);
    config.jwks_url = Some(format!("{}/jwks.json", redirector.url));

    let verifier = TokenVerifier::start(config).unwrap();

    assert!(!verifier.wait_until_ready(Duration::from_millis(800)).await);
    assert_eq!(issuer.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed() {
    let issuer = support::issuer().await;
    let server = FixedServer::start().await;
    server.answer("/old/jwks.json", Answer::Redirect("/jwks.json".into()));
    server.answer("/jwks.json", Answer::Json(jwks_of(&issuer)));
    let mut config = VerifierConfig::new(issuer.url(), support::AUDIENCE);
    config.jwks_url = Some(format!("{}/old/jwks.json", server.url));

    let verifier = TokenVerifier::start(config).unwrap();

    assert!(verifier.wait_until_ready(Duration::from_secs(5)).await);
    assert_eq!(server.hits("/jwks.json"), 1);
    assert!(
        verifier
            .verify(&support::valid(&issuer).mint())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn metadata_that_sends_the_keys_over_plain_http_off_loopback_is_not_used() {
    let issuer = FixedServer::start().await;
    // An IPv4-mapped IPv6 address is not on the loopback list: refused before any request
    // (and were it asked, it would still only reach this machine).
    let jwks_uri = issuer.url.replace("127.0.0.1", "[::ffff:127.0.0.1]") + "/jwks.json";
    issuer.answer(
        "/.well-known/oauth-authorization-server",
        Answer::Json(json!({"issuer": issuer.url, "jwks_uri": jwks_uri}).to_string()),
    );
    issuer.answer("/jwks.json", Answer::Json(r#"{"keys": []}"#.into()));

    let verifier =
        TokenVerifier::start(VerifierConfig::new(&issuer.url, support::AUDIENCE)).unwrap();

    assert!(!verifier.wait_until_ready(Duration::from_millis(800)).await);
    assert!(issuer.hits("/.well-known/oauth-authorization-server") >= 1);
    assert_eq!(issuer.hits("/jwks.json"), 0);
    assert_eq!(verifier.stats().jwks_fetches, 0);
}

#[tokio::test]
async fn plain_http_off_loopback_is_a_configuration_error_unless_allowed() {
    let mut config = VerifierConfig::new("https://issuer.example", support::AUDIENCE);
    config.jwks_url = Some("http://auth-server:9000/.well-known/jwks.json".into());

    let err = TokenVerifier::new(config.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("jwks_url") && err.contains("allow_insecure_jwks_url"),
        "{err}"
    );

    config.allow_insecure_jwks_url = true;
    assert!(TokenVerifier::new(config).is_ok());
}
