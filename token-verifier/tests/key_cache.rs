//! How the verifier keeps the issuer's keys: readiness, refetching on unknown keys without
//! flooding the issuer, surviving outages, picking up rotation, honouring max-age.

mod support;

use std::time::Duration;

use support::{SigningKey, TestIssuer};
use token_verifier::{TokenVerifier, VerifierConfig, VerifyError};

#[tokio::test]
async fn the_verifier_is_ready_only_once_it_has_fetched_keys() {
    let key = SigningKey::es256("ready");
    let issuer = TestIssuer::start(&[&key]).await;
    issuer.go_down();
    let mut config = VerifierConfig::new(&issuer.url, support::AUDIENCE);
    config.jwks_url = Some(issuer.jwks_url());

    let verifier = TokenVerifier::start(config).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!verifier.is_ready(), "no keys yet: not ready");
    assert_eq!(
        verifier.verify(&key.sign(&issuer.claims())).await,
        Err(VerifyError::UnknownKey)
    );

    issuer.come_back();
    assert!(verifier.wait_until_ready(Duration::from_secs(5)).await);
    assert!(verifier.verify(&key.sign(&issuer.claims())).await.is_ok());
}

#[tokio::test]
async fn unknown_kids_trigger_at_most_one_refetch_per_cooldown() {
    let key = SigningKey::es256("known");
    let issuer = TestIssuer::start(&[&key]).await;
    let verifier = issuer
        .verifier_with(|config| config.unknown_kid_cooldown = Duration::from_secs(1))
        .await;
    assert_eq!(issuer.jwks_fetches(), 1);

    // Within the cooldown of the first fetch: a flood of made-up kids fetches nothing.
    let outcomes = flood_of_made_up_kids(&verifier, &issuer, "one").await;
    assert!(
        outcomes
            .iter()
            .all(|outcome| *outcome == Err(VerifyError::UnknownKey))
    );
    assert_eq!(issuer.jwks_fetches(), 1, "no refetch within the cooldown");

    // Once the cooldown has passed: the whole flood costs one fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    flood_of_made_up_kids(&verifier, &issuer, "two").await;
    assert_eq!(issuer.jwks_fetches(), 2, "one refetch for the whole flood");
    flood_of_made_up_kids(&verifier, &issuer, "three").await;
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "and none again until the next cooldown"
    );
}

/// Fifty tokens with made-up kids, verified concurrently.
async fn flood_of_made_up_kids(
    verifier: &TokenVerifier,
    issuer: &TestIssuer,
    round: &str,
) -> Vec<Result<token_verifier::VerifiedClaims, VerifyError>> {
    let key = SigningKey::es256("unused");
    let handles: Vec<_> = (0..50)
        .map(|n| {
            let token = key.sign_with_header(&issuer.claims(), |header| {
                header.set_key_id(format!("made-up-{round}-{n}"));
            });
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap());
    }
    outcomes
}

#[tokio::test]
async fn a_rotated_in_key_is_picked_up_without_a_restart() {
    let old = SigningKey::es256("rotation-old");
    let issuer = TestIssuer::start(&[&old]).await;
    let verifier = issuer
        .verifier_with(|config| config.unknown_kid_cooldown = Duration::ZERO)
        .await;
    let old_token = old.sign(&issuer.claims());

    let new = SigningKey::es256("rotation-new");
    issuer.publish(&[&old, &new]);

    assert!(
        verifier.verify(&new.sign(&issuer.claims())).await.is_ok(),
        "new key"
    );
    assert!(
        verifier.verify(&old_token).await.is_ok(),
        "old key, still published"
    );
}

#[tokio::test]
async fn a_key_the_issuer_stopped_publishing_stops_verifying() {
    let old = SigningKey::es256("retired-old");
    let new = SigningKey::es256("retired-new");
    let issuer = TestIssuer::start(&[&old, &new]).await;
    issuer.set_max_age(1);
    let verifier = issuer.verifier().await;
    let old_token = old.sign(&issuer.claims());
    assert!(verifier.verify(&old_token).await.is_ok());

    issuer.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(1600)).await;

    assert_eq!(
        verifier.verify(&old_token).await,
        Err(VerifyError::UnknownKey)
    );
}

#[tokio::test]
async fn keys_are_refreshed_when_their_max_age_runs_out_and_not_before() {
    let key = SigningKey::es256("max-age");
    let issuer = TestIssuer::start(&[&key]).await;
    issuer.set_max_age(1);
    let _verifier = issuer.verifier().await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fetches = issuer.jwks_fetches();
    assert!(
        (2..=4).contains(&fetches),
        "refreshed about once a second: {fetches}"
    );

    issuer.set_max_age(3600);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let settled = issuer.jwks_fetches();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        issuer.jwks_fetches(),
        settled,
        "an hour's max-age is honoured"
    );
}

#[tokio::test]
async fn the_last_good_keys_keep_working_while_the_issuer_is_down() {
    let key = SigningKey::es256("outage");
    let issuer = TestIssuer::start(&[&key]).await;
    issuer.set_max_age(1);
    let verifier = issuer
        .verifier_with(|config| config.unknown_kid_cooldown = Duration::ZERO)
        .await;
    let token = key.sign(&issuer.claims());

    issuer.go_down();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let stranger = SigningKey::es256("outage-stranger").sign(&issuer.claims());
    assert_eq!(
        verifier.verify(&stranger).await,
        Err(VerifyError::UnknownKey)
    );

    assert!(issuer.jwks_fetches() > 1, "the verifier did try again");
    assert!(verifier.is_ready(), "still ready on the last good keys");
    assert!(verifier.verify(&token).await.is_ok());
}
