//! Issue 11, finding 11, both halves under concurrent load: an emergency rotation costs at
//! most about a second of refusals, and a flood of made-up `kid`s costs the issuer at most
//! one JWKS fetch per few seconds. Figures are printed (`--nocapture`) for the record.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use support::{TestIssuer, valid};
use token_verifier::{TokenVerifier, VerifyError};

/// What one worker saw: when, and whether its token passed.
type Outcomes = Vec<(Instant, Result<(), VerifyError>)>;

/// `workers` tasks that each mint a token with the issuer's active key and verify it, in a
/// loop, until `stop`.
fn spawn_writers(
    issuer: &Arc<TestIssuer>,
    verifier: &TokenVerifier,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Outcomes>> {
    (0..workers)
        .map(|_| {
            let (issuer, verifier, stop) = (Arc::clone(issuer), verifier.clone(), Arc::clone(stop));
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let token = valid(&issuer).mint();
                    let outcome = verifier.verify(&token).await.map(|_| ());
                    outcomes.push((Instant::now(), outcome));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                outcomes
            })
        })
        .collect()
}

/// `workers` tasks verifying tokens with made-up `kid`s as fast as they can, until `stop`;
/// returns how many they sent.
fn spawn_flood(
    issuer: &TestIssuer,
    verifier: &TokenVerifier,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..workers)
        .map(|worker| {
            // Minted ahead: the flood is about the verifier, not the signing.
            let tokens: Vec<String> = (0..100)
                .map(|n| valid(issuer).kid(&format!("made-up-{worker}-{n}")).mint())
                .collect();
            let (verifier, stop) = (verifier.clone(), Arc::clone(stop));
            tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let outcome = verifier.verify(&tokens[sent % tokens.len()]).await;
                    assert_eq!(outcome, Err(VerifyError::UnknownKey));
                    sent += 1;
                    // Thousands a second are a flood; leave the two cores some air.
                    if sent % 20 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                sent
            })
        })
        .collect()
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Outcomes>>) -> Outcomes {
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

/// Refusals after `since`, and the time from `since` to the last of them.
fn refusals_after(outcomes: &Outcomes, since: Instant) -> (usize, Duration) {
    let refused: Vec<Instant> = outcomes
        .iter()
        .filter(|(at, outcome)| *at >= since && outcome.is_err())
        .map(|(at, _)| *at)
        .collect();
    let window = refused
        .iter()
        .max()
        .map_or(Duration::ZERO, |last| last.duration_since(since));
    (refused.len(), window)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_rotation_under_load_is_refused_for_less_than_a_second() {
    let issuer = Arc::new(support::issuer().await);
    // resource-api passes a 30 s cooldown: the rotation must not depend on it.
    let verifier = support::verifier_with(&issuer, |config| {
        config.unknown_kid_cooldown = Duration::from_secs(30);
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(&issuer, &verifier, 6, &stop);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rotated_at = Instant::now();
    issuer.rotate_now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(writers).await;

    let (refused, window) = refusals_after(&outcomes, rotated_at);
    let after = outcomes.iter().filter(|(at, _)| *at >= rotated_at).count();
    eprintln!(
        "emergency rotation, 6 writers: {refused} of {after} verifications after the rotation \
         refused, last {window:?} after it; {} JWKS fetches in all",
        issuer.jwks_fetches()
    );
    assert!(after > 100, "the load went on: {after}");
    assert!(window < Duration::from_secs(1), "refused for {window:?}");
    assert_eq!(
        verifier.stats().unknown_kid_refetches,
        1,
        "the six writers shared one refetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_just_after_a_made_up_kid_waits_out_only_the_minimum_interval() {
    let issuer = Arc::new(support::issuer().await);
    let verifier = support::verifier_with(&issuer, |config| {
        config.unknown_kid_cooldown = Duration::from_secs(30);
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(&issuer, &verifier, 6, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A made-up kid refetches (for nothing), and the issuer rotates right after.
    let stray = valid(&issuer).kid("made-up-stray").mint();
    assert_eq!(verifier.verify(&stray).await, Err(VerifyError::UnknownKey));
    let rotated_at = Instant::now();
    issuer.rotate_now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(writers).await;

    let (refused, window) = refusals_after(&outcomes, rotated_at);
    eprintln!(
        "rotation right after a made-up kid: {refused} refused, last {window:?} after the \
         rotation"
    );
    assert!(
        refused > 0,
        "the minimum interval did hold the refetch back"
    );
    assert!(
        window < Duration::from_millis(1200),
        "refused for {window:?}: about the 1 s minimum interval at most"
    );
    assert_eq!(verifier.stats().unknown_kid_refetches, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_kids_costs_the_issuer_a_fetch_per_few_seconds() {
    let issuer = Arc::new(support::issuer().await);
    let verifier = support::verifier(&issuer).await; // defaults: 1 s, backing off to 5 s
    let stop = Arc::new(AtomicBool::new(false));
    let flood = spawn_flood(&issuer, &verifier, 8, &stop);
    let writers = spawn_writers(&issuer, &verifier, 2, &stop);

    let started = Instant::now();
    let mut fetches_at = Vec::new();
    let mut seen = issuer.jwks_fetches();
    while started.elapsed() < Duration::from_secs(9) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = issuer.jwks_fetches();
        if now > seen {
            fetches_at.push(started.elapsed());
            seen = now;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for handle in flood {
        sent += handle.await.unwrap();
    }
    let outcomes = collect(writers).await;

    let refetches = issuer.jwks_fetches() - 1;
    eprintln!(
        "flood of {sent} made-up kids over 9 s: {refetches} JWKS fetches, at {fetches_at:?}; \
         {} held back",
        verifier.stats().unknown_kid_refetches_held_back
    );
    assert!(sent > 1000, "a flood: {sent}");
    // At 0, 1, 3 and 7 s (then every 5 s): never two within a second, and fewer and fewer.
    assert!((3..=4).contains(&refetches), "{refetches} refetches");
    for pair in fetches_at.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(900),
            "{fetches_at:?}"
        );
    }
    assert!(
        outcomes.iter().all(|(_, outcome)| outcome.is_ok()),
        "tokens with the real key kept passing during the flood"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_during_a_flood_is_picked_up_within_one_cooldown() {
    let issuer = Arc::new(support::issuer().await);
    let verifier = support::verifier(&issuer).await; // cooldown 5 s
    let stop = Arc::new(AtomicBool::new(false));
    let flood = spawn_flood(&issuer, &verifier, 4, &stop);
    let writers = spawn_writers(&issuer, &verifier, 2, &stop);

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let rotated_at = Instant::now();
    issuer.rotate_now();
    tokio::time::sleep(Duration::from_millis(6000)).await;
    stop.store(true, Ordering::Relaxed);
    for handle in flood {
        handle.await.unwrap();
    }
    let outcomes = collect(writers).await;

    let (refused, window) = refusals_after(&outcomes, rotated_at);
    eprintln!("rotation during a flood: {refused} refused, last {window:?} after the rotation");
    assert!(window < Duration::from_secs(5), "refused for {window:?}");
    let last = outcomes.iter().map(|(at, _)| *at).max().unwrap();
    assert!(
        outcomes
            .iter()
            .filter(|(at, _)| last.duration_since(*at) < Duration::from_millis(500))
            .all(|(_, outcome)| outcome.is_ok()),
        "the new key passes in the end"
    );
}
