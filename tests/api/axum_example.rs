//! The example axum API (examples/axum-api, token-verifier's `axum` feature) trusting the
//! real auth-server, as the players API does: the same token checks, the same RFC 6750
//! answers, the unknown-`kid` flood limited, and an emergency rotation picked up at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use auth_server::config::BootstrapClient;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::jws::{ES256, JwsHeader};
use serde_json::{Value, json};
use token_verifier::TokenVerifier;

use crate::helpers::{
    AuthServer, CLIENT_ID, CLIENT_SECRET, TestDb, cli, decode_unverified, spawn_auth_server_with,
};

/// A client allowed to write scouting notes, and nothing else.
const SCOUT_ID: &str = "scout";
const SCOUT_SECRET: &str = "scout-secret";

/// The example API, its verifier (whose counters show what it asked of the issuer), and
/// the task serving it.
struct NotesApi {
    address: String,
    http: reqwest::Client,
    verifier: TokenVerifier,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for NotesApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NotesApi {
    async fn add(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/notes", self.address))
            .json(&json!({"player": "Julián Álvarez", "text": "Presses from the front."}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn notes(&self) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/notes", self.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// The auth-server with the usual clients plus the scout, on a fresh database.
async fn spawn_issuer(configure: impl FnOnce(&mut auth_server::Settings)) -> (AuthServer, TestDb) {
    spawn_auth_server_with(|settings| {
        settings.clients.push(BootstrapClient {
            client_id: SCOUT_ID.into(),
            client_secret: Some(SCOUT_SECRET.into()),
            client_secret_file: None,
            client_secret_hash: None,
            client_secret_hash_file: None,
            scopes: vec!["scouting:write".into()],
            audiences: vec!["scouting-api".into()],
            grant_types: vec!["client_credentials".into()],
            ..BootstrapClient::default()
        });
        configure(settings);
    })
    .await
}

/// The notes API on port 0 trusting `issuer` for `scouting-api`, its keys fetched.
async fn spawn_notes_api(issuer: &str) -> NotesApi {
    let app = axum_api::Application::build(axum_api::Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        issuer: issuer.into(),
        ..axum_api::Settings::default()
    })
    .await
    .expect("the notes API starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let verifier = app.verifier().clone();
    let task = tokio::spawn(app.run_until_stopped());
    assert!(verifier.wait_until_ready(Duration::from_secs(5)).await);
    NotesApi {
        address,
        http: reqwest::Client::new(),
        verifier,
        task,
    }
}

async fn scout_token(auth: &AuthServer) -> String {
    auth.access_token_for(SCOUT_ID, SCOUT_SECRET, &[]).await
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Asserts a 401 `invalid_token` answer with this description.
async fn assert_invalid_token(response: reqwest::Response, description: &str) {
    assert_eq!(response.status(), 401, "{description}");
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer realm="scouting-api", error="invalid_token", error_description="{description}""#
        )
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn a_token_for_the_notes_api_with_its_scope_writes_a_note() {
    let (auth, _db) = spawn_issuer(|_| {}).await;
    let api = spawn_notes_api(&auth.address).await;
    let token = scout_token(&auth).await;
    assert_eq!(decode_unverified(&token).1["aud"], "scouting-api");

    let response = api.add(Some(&token)).await;

    assert_eq!(response.status(), 201);
    let note: Value = response.json().await.unwrap();
    assert_eq!(note["author"], SCOUT_ID);
    assert_eq!(api.notes().await, [note]);
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let (auth, _db) = spawn_issuer(|_| {}).await;
    let api = spawn_notes_api(&auth.address).await;

    let response = api.add(None).await;

    assert_eq!(response.status(), 401);
    assert_eq!(challenge(&response), r#"Bearer realm="scouting-api""#);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(api.notes().await.is_empty());
}

#[tokio::test]
async fn a_token_for_the_players_api_is_401_invalid_token() {
    let (auth, _db) = spawn_issuer(|_| {}).await;
    let api = spawn_notes_api(&auth.address).await;
    let token = auth.access_token().await;
    assert_eq!(decode_unverified(&token).1["aud"], "players-api");

    let response = api.add(Some(&token)).await;

    assert_invalid_token(response, "token is not meant for this audience").await;
    assert!(api.notes().await.is_empty());
}

#[tokio::test]
async fn a_token_without_the_write_scope_is_403_insufficient_scope() {
    let (auth, _db) = spawn_issuer(|_| {}).await;
    let api = spawn_notes_api(&auth.address).await;
    let token = auth
        .access_token_for(CLIENT_ID, CLIENT_SECRET, &[("audience", "scouting-api")])
        .await;
    assert_eq!(decode_unverified(&token).1["scope"], "players:write");

    let response = api.add(Some(&token)).await;

    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        r#"Bearer realm="scouting-api", error="insufficient_scope", scope="scouting:write""#
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert!(api.notes().await.is_empty());
}

#[tokio::test]
async fn forged_tokens_are_401_invalid_token_and_write_nothing() {
    let (auth, _db) = spawn_issuer(|_| {}).await;
    let api = spawn_notes_api(&auth.address).await;
    let real = scout_token(&auth).await;
    let (header, claims) = decode_unverified(&real);
    let parts: Vec<&str> = real.split('.').collect();
    let attacker = ES256.generate_key_pair().unwrap();
    let signer = ES256
        .signer_from_der(attacker.to_der_private_key())
        .unwrap();
    let under_the_real_kid = josekit::jws::serialize_compact(
        claims.to_string().as_bytes(),
        &JwsHeader::from_map(header.as_object().unwrap().clone()).unwrap(),
        &signer,
    )
    .unwrap();
    let mut more_scope = claims.clone();
    more_scope["scope"] = json!("scouting:write scouting:admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(more_scope.to_string()),
        parts[2]
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"typ": "at+jwt", "alg": "none", "kid": header["kid"]}).to_string()),
        parts[1]
    );

    for (token, description) in [
        (under_the_real_kid, "token signature is invalid"),
        (tampered, "token signature is invalid"),
        (unsigned, "token algorithm is not accepted"),
    ] {
        assert_invalid_token(api.add(Some(&token)).await, description).await;
    }
    assert!(api.notes().await.is_empty());
    assert_eq!(
        api.add(Some(&real)).await.status(),
        201,
        "the real one works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_kids_costs_the_issuer_a_fetch_per_second_at_most_and_real_tokens_pass()
{
    let (auth, _db) = spawn_issuer(|_| {}).await;
    let api = Arc::new(spawn_notes_api(&auth.address).await);
    let real = scout_token(&auth).await;
    let (header, claims) = decode_unverified(&real);
    let attacker = ES256.generate_key_pair().unwrap();
    let signer = ES256
        .signer_from_der(attacker.to_der_private_key())
        .unwrap();
    let made_up: Vec<String> = (0..200)
        .map(|n| {
            let mut header = JwsHeader::from_map(header.as_object().unwrap().clone()).unwrap();
            header.set_key_id(format!("made-up-{n}"));
            josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer)
                .unwrap()
        })
        .collect();
    let fetches_before = api.verifier.stats().jwks_fetches;

    let started = Instant::now();
    let flood: Vec<_> = made_up
        .chunks(50)
        .map(|tokens| {
            let (api, tokens) = (Arc::clone(&api), tokens.to_vec());
            tokio::spawn(async move {
                let mut sent = 0;
                while started.elapsed() < Duration::from_millis(3500) {
                    let response = api.add(Some(&tokens[sent % tokens.len()])).await;
                    assert_eq!(response.status(), 401);
                    assert!(challenge(&response).contains("token signing key is unknown"));
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        api.add(Some(&real)).await.status(),
        201,
        "a real token passes during the flood"
    );
    let mut sent = 0;
    for task in flood {
        sent += task.await.unwrap();
    }

    let stats = api.verifier.stats();
    let refetches = stats.jwks_fetches - fetches_before;
    eprintln!(
        "flood of {sent} made-up kids over 3.5 s against the real issuer: {refetches} JWKS \
         fetches, {} held back",
        stats.unknown_kid_refetches_held_back
    );
    assert!(sent > 100, "a flood: {sent}");
    // The first at once, then 1 s later, then 2 s after that (backing off to one per 5 s).
    assert!((1..=3).contains(&refetches), "{refetches} fetches");
    assert_eq!(stats.unknown_kid_refetches, refetches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_rotation_costs_the_notes_api_no_more_than_a_second_of_refusals() {
    let (auth, _db) = spawn_issuer(|settings| settings.key_refresh_secs = 1).await;
    let auth = Arc::new(auth);
    let api = Arc::new(spawn_notes_api(&auth.address).await);
    let old_kid = decode_unverified(&scout_token(&auth).await).0["kid"].clone();
    let stop = Arc::new(AtomicBool::new(false));

    // Six writers, each fetching a fresh token and writing, in a loop (issue 11's load).
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let (auth, api, stop) = (Arc::clone(&auth), Arc::clone(&api), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let token = scout_token(&auth).await;
                    let kid = decode_unverified(&token).0["kid"].clone();
                    let status = api.add(Some(&token)).await.status().as_u16();
                    outcomes.push((Instant::now(), kid, status));
                }
                outcomes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cli(&auth.settings, &["keys", "rotate", "--now"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for writer in writers {
        outcomes.extend(writer.await.unwrap());
    }

    let first_new = outcomes
        .iter()
        .filter(|(_, kid, _)| *kid != old_kid)
        .map(|(at, _, _)| *at)
        .min()
        .expect("the issuer signed with the new key");
    let with_new_key: Vec<_> = outcomes
        .iter()
        .filter(|(_, kid, _)| *kid != old_kid)
        .collect();
    let refused: Vec<Instant> = with_new_key
        .iter()
        .filter(|(_, _, status)| *status != 201)
        .map(|(at, _, _)| *at)
        .collect();
    let window = refused
        .iter()
        .max()
        .map_or(Duration::ZERO, |last| last.duration_since(first_new));
    eprintln!(
        "emergency rotation against the real issuer: {} of {} writes with the new key refused, \
         last {window:?} after the first; {} writes in all",
        refused.len(),
        with_new_key.len(),
        outcomes.len()
    );
    assert!(with_new_key.len() > 20, "writes went on with the new key");
    assert!(window < Duration::from_secs(1), "refused for {window:?}");
    assert!(
        outcomes
            .iter()
            .all(|(_, _, status)| *status == 201 || *status == 401),
        "nothing but 201 and 401"
    );
}
