//! Throttling as a deployment sees it: counts shared through the real Redis at 127.0.0.1:6379
//! (`REDIS_URL` overrides) by several instances, the fall-back when Redis is gone, addresses
//! behind trusted proxies, and who an address block stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_server::Settings;
use auth_server::throttle::ThrottleStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis key prefix of this test's own, deleted when dropped.
struct RedisPrefix(String);

impl RedisPrefix {
    fn new() -> Self {
        Self(format!("e2e-{}:", uuid::Uuid::new_v4().simple()))
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        let _ = std::thread::spawn(move || {
            let client = redis::Client::open(redis_url()).ok()?;
            let mut c = client.get_connection().ok()?;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut c)
                .ok()?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).ok()?;
            }
            Some(())
        })
        .join();
    }
}

fn shared_store(s: &mut Settings, url: &str, prefix: &RedisPrefix) {
    s.throttle.store = ThrottleStore::Redis;
    s.throttle.redis_url = Some(url.to_owned());
    s.throttle.redis_key_prefix = prefix.0.clone();
}

fn strict(s: &mut Settings) {
    s.throttle.max_failures = 3;
    s.throttle.base_backoff_secs = 30;
    s.throttle.max_backoff_secs = 60;
}

/// Two instances on one database, configured alike by `configure`.
async fn two_instances(configure: impl Fn(&mut Settings)) -> (AuthServer, AuthServer, TestDb) {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    configure(&mut settings);
    let a = start_with_own_issuer(settings.clone()).await;
    let b = start_with_own_issuer(settings).await;
    (a, b, db)
}

/// Wrong secrets for the dev client, alternating between the instances; the statuses.
async fn burst(a: &AuthServer, b: &AuthServer, n: usize) -> Vec<u16> {
    burst_for(CLIENT_ID, a, b, n).await
}

async fn burst_for(id: &str, a: &AuthServer, b: &AuthServer, n: usize) -> Vec<u16> {
    let form = [("grant_type", "client_credentials")];
    let mut statuses = Vec::new();
    for i in 0..n {
        let server = if i % 2 == 0 { a } else { b };
        let response = server.token_basic(id, "wrong-guess", &form).await;
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn a_burst_spread_over_two_instances_is_throttled_as_one_through_redis() {
    let prefix = RedisPrefix::new();
    let (a, b, _db) = two_instances(|s| {
        strict(s);
        shared_store(s, &redis_url(), &prefix);
    })
    .await;
    // 3 failures (2 on a, 1 on b) reach the limit of 3: the next attempt on either is 429.
    assert_eq!(burst(&a, &b, 3).await, [401, 401, 401]);
    assert_eq!(burst(&b, &a, 2).await, [429, 429]);
    // The real client is not blocked by the guesses where its secret is proven (b verified it
    // against the stored hash at start-up, from the configuration).
    let form = [("grant_type", "client_credentials")];
    assert_eq!(
        b.token_basic(CLIENT_ID, CLIENT_SECRET, &form)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn without_a_shared_store_each_instance_counts_alone() {
    // The control: the same burst against in-memory counts gets 2 × the attempts.
    let (a, b, _db) = two_instances(strict).await;
    assert_eq!(burst(&a, &b, 4).await, [401, 401, 401, 401]);
    assert_eq!(burst(&a, &b, 2).await, [401, 401]);
    assert_eq!(burst(&a, &b, 2).await, [429, 429]);
}

/// A TCP relay to Redis that can be cut and restored, and counts the bytes sent to Redis.
struct Relay {
    url: String,
    up: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

impl Relay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let target = redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let up = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicU64::new(0));
        let (up2, sent2) = (up.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(pipe(client, server, up2.clone(), sent2.clone()));
            }
        });
        Relay { url, up, sent }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// Relays both ways until either side closes or the relay is cut.
async fn pipe(client: TcpStream, server: TcpStream, up: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut to_server = [0u8; 4096];
    let mut to_client = [0u8; 4096];
    loop {
        let cut = async {
            while up.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            read = cr.read(&mut to_server) => match read {
                Ok(n) if n > 0 => {
                    sent.fetch_add(n as u64, Ordering::SeqCst);
                    if sw.write_all(&to_server[..n]).await.is_err() { return; }
                }
                _ => return,
            },
            read = sr.read(&mut to_client) => match read {
                Ok(n) if n > 0 => {
                    if cw.write_all(&to_client[..n]).await.is_err() { return; }
                }
                _ => return,
            },
            _ = cut => return,
        }
    }
}

#[tokio::test]
async fn a_proven_secret_costs_no_round_trip_to_the_shared_store() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start().await;
    let (server, _db) = spawn_auth_server_with(|s| shared_store(s, &relay.url, &prefix)).await;
    // The first request is the slow path (argon2id; throttle check in Redis).
    server.access_token().await;
    let after_first = relay.sent();
    assert!(after_first > 0, "the slow path asked Redis");
    // Later ones are proven by the verified-secret cache: not one byte to Redis.
    for _ in 0..20 {
        server.access_token().await;
    }
    assert_eq!(relay.sent(), after_first);
    // A wrong secret is the slow path again.
    let form = [("grant_type", "client_credentials")];
    assert_eq!(
        server.token_basic(CLIENT_ID, "wrong", &form).await.status(),
        401
    );
    assert!(relay.sent() > after_first);
}

#[tokio::test]
async fn an_unreachable_store_falls_back_to_per_instance_limits_at_once() {
    let prefix = RedisPrefix::new();
    // Nothing listens on port 1.
    let (server, _db) = spawn_auth_server_with(|s| {
        strict(s);
        shared_store(s, "redis://127.0.0.1:1", &prefix);
    })
    .await;
    let form = [("grant_type", "client_credentials")];
    let outages_before = server.counter("auth_shared_store_outages_total").await;
    let start = Instant::now();
    for _ in 0..3 {
        let response = server.token_basic(CLIENT_ID, "wrong", &form).await;
        assert_oauth_error_code(response, 401, "invalid_client").await;
    }
    let throttled = server.token_basic(CLIENT_ID, "wrong", &form).await;
    assert_eq!(throttled.status(), 429, "the instance's own counts");
    // Four argon2id checks at most, one 100 ms time-out: no request waited on Redis.
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(server.counter("auth_shared_store_outages_total").await > outages_before);
    // Other clients still get tokens.
    let other = server.token_basic(READER_ID, READER_SECRET, &form).await;
    assert_eq!(other.status(), 200);
}

async fn redis_has(key: &str) -> bool {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut c)
        .await
        .unwrap()
        == 1
}

#[tokio::test]
async fn the_shared_store_is_used_again_once_it_is_back() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start().await;
    let (a, b, _db) = two_instances(|s| {
        strict(s);
        shared_store(s, &relay.url, &prefix);
        s.throttle.redis_retry_secs = 1;
    })
    .await;
    relay.set_up(false);
    // Down: each instance counts alone (2 failures each stay under the limit of 3), at once.
    let start = Instant::now();
    assert_eq!(burst(&a, &b, 4).await, [401; 4]);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // Back: within a few retry periods, both instances count in Redis again, untouched.
    relay.set_up(true);
    let form = [("grant_type", "client_credentials")];
    let probe = |name: &str| format!("{}throttle:f:cn:{name}", prefix.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.token_basic("probe-a", "x", &form).await;
        b.token_basic("probe-b", "x", &form).await;
        if redis_has(&probe("probe-a")).await && redis_has(&probe("probe-b")).await {
            break;
        }
        assert!(Instant::now() < deadline, "Redis was not used again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Shared again: 3 failures over both instances (2 + 1) block the 4th.
    assert_eq!(burst_for(READER_ID, &a, &b, 4).await, [401, 401, 401, 429]);
}

#[tokio::test]
async fn an_address_block_stops_unproven_attempts_and_lets_proven_clients_through() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.throttle.max_failures_per_address = 4;
        s.throttle.base_backoff_secs = 30;
        s.throttle.max_backoff_secs = 60;
    })
    .await;
    let form = [("grant_type", "client_credentials")];
    let from_shared_address = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let token = |id: &'static str, secret: &'static str| {
        from_shared_address
            .post(server.url("/auth/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
    };
    // A real client on that address proves its secret once.
    assert_eq!(token(CLIENT_ID, CLIENT_SECRET).await.unwrap().status(), 200);
    // Someone else there guesses unknown ids until the address is blocked.
    for i in 0..4 {
        let id = ["ghost-1", "ghost-2", "ghost-3", "ghost-4"][i];
        assert_eq!(token(id, "guess").await.unwrap().status(), 401);
    }
    assert_eq!(token("ghost-5", "guess").await.unwrap().status(), 429);
    // Unproven attempts from the address wait, known ids included...
    assert_eq!(token(READER_ID, READER_SECRET).await.unwrap().status(), 429);
    // ...but the proven client is served.
    for _ in 0..3 {
        assert_eq!(token(CLIENT_ID, CLIENT_SECRET).await.unwrap().status(), 200);
    }
}

/// Sends a wrong secret for the dev client as forwarded by a proxy at 127.0.0.1, with
/// `X-Forwarded-For: <forwarded>`.
async fn forwarded_failure(server: &AuthServer, forwarded: &str) -> u16 {
    server
        .http
        .post(server.url("/auth/token"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .header("x-forwarded-for", forwarded)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_trusted_proxies_the_client_is_the_first_untrusted_address_from_the_right() {
    let (server, _db) = spawn_auth_server_with(|s| {
        strict(s);
        s.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.throttle.max_failures = 100;
        s.throttle.max_failures_per_address = 3;
    })
    .await;
    // The client writes a new address each time; the proxy appends the real one with a port.
    // The real one is counted: changing the left part (or adding a port) gains nothing.
    let statuses = [
        forwarded_failure(&server, "198.51.100.1, 203.0.113.9:40001").await,
        forwarded_failure(&server, "198.51.100.2, 203.0.113.9:40002").await,
        forwarded_failure(&server, "198.51.100.3, 203.0.113.9").await,
        forwarded_failure(&server, "198.51.100.4, 203.0.113.9:40004").await,
    ];
    assert_eq!(statuses, [401, 401, 401, 429]);
    // Another client behind the same proxy is not affected.
    assert_eq!(forwarded_failure(&server, "203.0.113.10").await, 401);
}

#[tokio::test]
async fn a_peer_that_is_not_a_trusted_proxy_cannot_choose_its_address() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.trusted_proxies = vec!["10.0.0.0/8".into()];
        s.throttle.max_failures = 100;
        s.throttle.max_failures_per_address = 3;
        s.throttle.base_backoff_secs = 30;
        s.throttle.max_backoff_secs = 60;
    })
    .await;
    let statuses = [
        forwarded_failure(&server, "198.51.100.1").await,
        forwarded_failure(&server, "198.51.100.2").await,
        forwarded_failure(&server, "198.51.100.3").await,
        forwarded_failure(&server, "198.51.100.4").await,
    ];
    assert_eq!(statuses, [401, 401, 401, 429], "counted against 127.0.0.1");
}

#[tokio::test]
async fn hopping_across_ipv6_64s_does_not_multiply_attempts_on_one_name() {
    let (server, _db) = spawn_auth_server_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1".into()];
        s.throttle.max_failures = 2;
        s.throttle.max_failures_per_name = 4;
        s.throttle.base_backoff_secs = 30;
        s.throttle.max_backoff_secs = 60;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(forwarded_failure(&server, &format!("2001:db8:{i}::1")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
}

/// An argon2id hash of `secret` with cheaper parameters than the server's (m=8 MiB, t=1).
fn cheap_hash(secret: &str) -> String {
    use argon2::CustomizedPasswordHasher;
    argon2::Argon2::default()
        .hash_password_customized(
            secret.as_bytes(),
            b"0123456789abcdef",
            None,
            None,
            argon2::Params::new(8192, 1, 1, None).unwrap(),
        )
        .unwrap()
        .to_string()
}

/// The stored hash, read straight from the database.
async fn stored_hash(db: &TestDb, sql: &str, column: &str) -> String {
    use sea_orm::{ConnectionTrait as _, Statement};
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    let hash: String = rows[0].try_get("", column).unwrap();
    conn.close().await.unwrap();
    hash
}

#[tokio::test]
async fn hashes_made_with_other_parameters_are_rehashed_after_a_successful_check() {
    let db = TestDb::new().await;
    let mut settings = auth_settings(&db, &new_kek());
    let app = settings
        .clients
        .iter_mut()
        .find(|c| c.client_id == APP_ID)
        .unwrap();
    app.client_secret = None;
    app.client_secret_hash = Some(cheap_hash(APP_SECRET));
    settings.users[0].password = None;
    settings.users[0].password_hash = Some(cheap_hash(PASSWORD));
    let server = start_with_own_issuer(settings).await;
    let client_sql = format!("SELECT secret_hash FROM clients WHERE client_id = '{APP_ID}'");
    let user_sql = format!("SELECT password_hash FROM users WHERE username = '{USERNAME}'");
    assert!(
        stored_hash(&db, &client_sql, "secret_hash")
            .await
            .contains("m=8192,t=1")
    );

    // A wrong secret changes nothing.
    let form = [("grant_type", "client_credentials")];
    assert_eq!(
        server.token_basic(APP_ID, "wrong", &form).await.status(),
        401
    );
    let grant = [
        ("grant_type", "password"),
        ("username", USERNAME),
        ("password", PASSWORD),
    ];
    assert_eq!(
        server
            .token_basic(APP_ID, APP_SECRET, &grant)
            .await
            .status(),
        200
    );

    // Both are rehashed (in the background) with the parameters of every other hash and of
    // the dummy an unknown id is checked against, and still verify.
    let current = "m=19456,t=2,p=1";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let client = stored_hash(&db, &client_sql, "secret_hash").await;
        let user = stored_hash(&db, &user_sql, "password_hash").await;
        if client.contains(current) && user.contains(current) {
            break;
        }
        assert!(Instant::now() < deadline, "not rehashed: {client} {user}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await; // the change reaches the cache
    assert_eq!(
        server
            .token_basic(APP_ID, APP_SECRET, &grant)
            .await
            .status(),
        200
    );
    assert_eq!(
        server.token_basic(APP_ID, "wrong", &grant).await.status(),
        401
    );
}
