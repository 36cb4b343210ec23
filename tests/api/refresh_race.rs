//! Issue 11, finding 2: reuse detection must win against a thief who keeps rotating the same
//! chain. Concurrent rotations and a replay, many times over, on the real database (PostgreSQL
//! with `TEST_DATABASE_URL`, where READ COMMITTED made the race possible).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_server::availability::Availability;
use auth_server::storage::Database;
use auth_server::stores::{Exchange, RefreshTokenRecord, TokenStore};
use service_kit::db::DbOptions;

use crate::helpers::TestDb;

fn record(chain: &str, hash: &str, now: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.to_owned(),
        chain_id: chain.to_owned(),
        client_id: "squad-app".into(),
        username: "lionel".into(),
        scope: "players:read".into(),
        audience: "players-api".into(),
        created_at: now,
        expires_at: now + 3600,
        chain_expires_at: now + 86_400,
        used_at: None,
        revoked_at: None,
        access_jti: Some(uuid::Uuid::new_v4().simple().to_string()),
        access_expires_at: Some(now + 600),
    }
}

fn new_hash() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_revokes_the_chain_even_while_a_thief_keeps_rotating_it() {
    let db = TestDb::new().await;
    let database = Database::connect(
        &db.url,
        &DbOptions::default(),
        Arc::new(Availability::new(Duration::from_secs(60))),
        Duration::from_secs(10),
    )
    .await
    .expect("the database opens");
    let tokens: Arc<dyn TokenStore> = Arc::new(database.tokens());
    let now = auth_server::clock::now_secs();

    let rounds = 150;
    let mut survived = 0;
    for round in 0..rounds {
        let chain = uuid::Uuid::new_v4().to_string();
        // The legitimate client rotated once (its spent token is what gets replayed); the thief
        // holds the current one.
        let spent = new_hash();
        tokens
            .insert_refresh(&record(&chain, &spent, now))
            .await
            .unwrap();
        let held = new_hash();
        assert_eq!(
            tokens
                .exchange_refresh(&spent, &record(&chain, &held, now), now)
                .await
                .unwrap(),
            Exchange::Rotated
        );

        let replayed = Arc::new(AtomicBool::new(false));
        let thief = {
            let tokens = tokens.clone();
            let replayed = replayed.clone();
            let chain = chain.clone();
            tokio::spawn(async move {
                let mut current = held;
                loop {
                    // Once the replay has been answered, the thief gets one last try.
                    let last_try = replayed.load(Ordering::SeqCst);
                    let next = new_hash();
                    let outcome = tokens
                        .exchange_refresh(&current, &record(&chain, &next, now), now)
                        .await
                        .unwrap();
                    match outcome {
                        Exchange::Reused => return (false, current),
                        Exchange::Rotated => current = next,
                    }
                    if last_try {
                        return (true, current);
                    }
                }
            })
        };
        // The replay lands somewhere among the thief's rotations.
        tokio::time::sleep(Duration::from_micros(200 + (round % 7) * 300)).await;
        let found = tokens.find_refresh(&spent).await.unwrap().unwrap();
        assert!(found.used_at.is_some());
        tokens.revoke_chain(&found.chain_id, now).await.unwrap();
        replayed.store(true, Ordering::SeqCst);

        let (thief_rotated_after_replay, current) = thief.await.unwrap();
        let current = tokens.find_refresh(&current).await.unwrap().unwrap();
        if thief_rotated_after_replay || current.revoked_at.is_none() {
            survived += 1;
        }
    }
    assert_eq!(
        survived, 0,
        "the thief's chain survived the replay in {survived} of {rounds} rounds"
    );
}
