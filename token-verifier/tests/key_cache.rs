//! How the verifier keeps the issuer's keys: readiness, refetching on unknown keys without
//! flooding the issuer, surviving outages, picking up rotation, honouring max-age.

mod support;

use std::time::Duration;

use support::{TestIssuer, valid};
use token_verifier::{TokenVerifier, VerifierConfig, VerifyError};

#[tokio::test]
async fn the_verifier_is_ready_only_once_it_has_fetched_keys() {
    let issuer = support::issuer().await;
    issuer.go_down();
    let mut config = VerifierConfig::new(issuer.url(), support::AUDIENCE);
    config.jwks_url = Some(issuer.jwks_url());

    let verifier = TokenVerifier::start(config).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!verifier.is_ready(), "no keys yet: not ready");
    assert_eq!(
        verifier.verify(&valid(&issuer).mint()).await,
        Err(VerifyError::UnknownKey)
    );

    issuer.come_back();
    assert!(verifier.wait_until_ready(Duration::from_secs(5)).await);
    assert!(verifier.verify(&valid(&issuer).mint()).await.is_ok());
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_once_then_no_more_than_the_limits_allow() {
    let issuer = support::issuer().await;
    let verifier = support::verifier(&issuer).await; // minimum interval 1 s, cooldown 5 s
    assert_eq!(issuer.jwks_fetches(), 1);

    // The start-up fetch does not hold the first refetch back (a rotation may have just
    // happened), but the whole flood costs one fetch.
    let outcomes = flood_of_made_up_kids(&verifier, &issuer, "one").await;
    assert!(
        outcomes
            .iter()
            .all(|outcome| *outcome == Err(VerifyError::UnknownKey))
    );
    assert_eq!(issuer.jwks_fetches(), 2, "one refetch for the whole flood");
    flood_of_made_up_kids(&verifier, &issuer, "two").await;
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "none again within the minimum interval"
    );

    // After the minimum interval: one more, then the wait doubles.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    flood_of_made_up_kids(&verifier, &issuer, "three").await;
    assert_eq!(issuer.jwks_fetches(), 3, "one refetch a second later");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    flood_of_made_up_kids(&verifier, &issuer, "four").await;
    assert_eq!(issuer.jwks_fetches(), 3, "the next wait is two seconds");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    flood_of_made_up_kids(&verifier, &issuer, "five").await;
    assert_eq!(
        issuer.jwks_fetches(),
        4,
        "two seconds after the last refetch"
    );
    assert_eq!(verifier.stats().unknown_kid_refetches, 3);
    assert_eq!(verifier.stats().jwks_fetches, 4);
}

/// Fifty tokens with made-up kids, verified concurrently.
async fn flood_of_made_up_kids(
    verifier: &TokenVerifier,
    issuer: &TestIssuer,
    round: &str,
) -> Vec<Result<token_verifier::VerifiedClaims, VerifyError>> {
    let handles: Vec<_> = (0..50)
        .map(|n| {
            let token = valid(issuer).kid(&format!("made-up-{round}-{n}")).mint();
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
    let issuer = support::issuer().await;
    let verifier = support::verifier_with(&issuer, |config| {
        config.unknown_kid_cooldown = Duration::ZERO
    })
    .await;
    let old_token = valid(&issuer).mint();

    issuer.rotate_now();

    assert!(
        verifier.verify(&valid(&issuer).mint()).await.is_ok(),
        "new key"
    );
    assert!(
        verifier.verify(&old_token).await.is_ok(),
        "old key, still published"
    );
}

#[tokio::test]
async fn a_rotated_in_key_is_picked_up_at_once_with_the_default_limits() {
    let issuer = support::issuer().await;
    let verifier = support::verifier(&issuer).await;
    let old_token = valid(&issuer).mint();

    issuer.rotate_now();

    assert!(
        verifier.verify(&valid(&issuer).mint()).await.is_ok(),
        "new key, right after the start-up fetch"
    );
    assert!(verifier.verify(&old_token).await.is_ok(), "old key");
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_key_the_issuer_stopped_publishing_stops_verifying() {
    let issuer = support::issuer().await;
    let old = issuer.active_key();
    issuer.rotate_now();
    issuer.set_max_age(Duration::from_secs(1));
    let verifier = support::verifier(&issuer).await;
    let old_token = valid(&issuer).signed_by(&old).mint();
    assert!(verifier.verify(&old_token).await.is_ok());

    issuer.unpublish(old.kid());
    tokio::time::sleep(Duration::from_millis(1600)).await;

    assert_eq!(
        verifier.verify(&old_token).await,
        Err(VerifyError::UnknownKey)
    );
}

#[tokio::test]
async fn keys_are_refreshed_when_their_max_age_runs_out_and_not_before() {
    let issuer = support::issuer().await;
    issuer.set_max_age(Duration::from_secs(1));
    let _verifier = support::verifier(&issuer).await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fetches = issuer.jwks_fetches();
    assert!(
        (2..=4).contains(&fetches),
        "refreshed about once a second: {fetches}"
    );

    issuer.set_max_age(Duration::from_secs(3600));
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
    let issuer = support::issuer().await;
    issuer.set_max_age(Duration::from_secs(1));
    let verifier = support::verifier_with(&issuer, |config| {
        config.unknown_kid_cooldown = Duration::ZERO
    })
    .await;
    let token = valid(&issuer).mint();

    issuer.go_down();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let stranger = valid(&issuer).kid("outage-stranger").mint();
    assert_eq!(
        verifier.verify(&stranger).await,
        Err(VerifyError::UnknownKey)
    );

    assert!(issuer.jwks_fetches() > 1, "the verifier did try again");
    assert!(verifier.is_ready(), "still ready on the last good keys");
    assert!(verifier.verify(&token).await.is_ok());
}
