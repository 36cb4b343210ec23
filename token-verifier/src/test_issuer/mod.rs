//! An in-process OAuth 2 issuer for tests (feature `test-issuer`): RFC 8414 discovery and a
//! JWKS served over real HTTP on `127.0.0.1:0`, access tokens minted with any claims, keys
//! rotated on demand, and the fetches it served counted. Served by hyper: no web framework
//! comes with it, so an axum API's tests stay free of poem.
//!
//! The three lines a test needs:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use token_verifier::test_issuer::TestIssuer;
//!
//! let issuer = TestIssuer::start().await; // trust issuer.url() in your API's settings
//! let token = issuer.token().audience("notes-api").scope("notes:write").mint();
//! let expired = issuer.token().audience("notes-api").scope("notes:write").expired().mint();
//! # let verifier = issuer.verifier("notes-api").await;
//! # assert!(verifier.verify(&token).await.is_ok());
//! # assert!(verifier.verify(&expired).await.is_err());
//! # }
//! ```
//!
//! Tokens for another audience (`.audience("other-api")`), without the scope (leave out
//! `.scope`), with a made-up `kid` (`.kid("nobody")`) or signed by a key the issuer never
//! published (`.signed_by(&SigningKey::generate(Algorithm::Es256))`) are one method away.
//! [`rotate_now`](TestIssuer::rotate_now) switches to a new key at once (an emergency
//! rotation); [`publish_new_key`](TestIssuer::publish_new_key) then
//! [`activate`](TestIssuer::activate) publishes it ahead first (a scheduled one).

mod dpop;
mod keys;
mod server;
mod token;

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};

pub use dpop::DpopKey;
pub use keys::SigningKey;
pub use token::TokenBuilder;

use crate::{Algorithm, TokenVerifier, VerifierConfig};

/// The audience of minted tokens unless the issuer or the token says otherwise.
pub const DEFAULT_AUDIENCE: &str = "test-api";

/// A running test issuer. Stops serving when dropped.
pub struct TestIssuer {
    state: Arc<IssuerState>,
    server: tokio::task::JoinHandle<()>,
}

/// What the issuer's HTTP side and its tokens share.
pub(crate) struct IssuerState {
    url: String,
    audience: String,
    algorithm: Algorithm,
    keys: Mutex<Keys>,
    available: AtomicBool,
    max_age_secs: AtomicU64,
    jwks_fetches: AtomicUsize,
    metadata_fetches: AtomicUsize,
}

struct Keys {
    published: Vec<SigningKey>,
    active: SigningKey,
}

impl IssuerState {
    fn keys(&self) -> MutexGuard<'_, Keys> {
        // A test that panicked while holding the lock left whole values behind.
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn active_key(&self) -> SigningKey {
        self.keys().active.clone()
    }

    /// The JWKS document, or `None` while the issuer plays down.
    pub(crate) fn jwks(&self) -> Option<(String, u64)> {
        self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        if !self.available.load(Ordering::SeqCst) {
            return None;
        }
        let keys: Vec<Value> = self
            .keys()
            .published
            .iter()
            .map(SigningKey::public_jwk)
            .collect();
        let max_age = self.max_age_secs.load(Ordering::SeqCst);
        Some((json!({ "keys": keys }).to_string(), max_age))
    }

    /// The RFC 8414 metadata document, or `None` while the issuer plays down.
    pub(crate) fn metadata(&self) -> Option<String> {
        self.metadata_fetches.fetch_add(1, Ordering::SeqCst);
        if !self.available.load(Ordering::SeqCst) {
            return None;
        }
        // RFC 8414 §2 requires `response_types_supported`; this issuer has no endpoints
        // that would answer any, so it lists none (and no `token_endpoint`).
        Some(
            json!({
                "issuer": self.url,
                "jwks_uri": format!("{}/.well-known/jwks.json", self.url),
                "response_types_supported": [],
            })
            .to_string(),
        )
    }
}

/// How a [`TestIssuer`] starts: its key algorithm, default audience and JWKS `max-age`.
#[must_use = "the issuer starts with `start`"]
pub struct TestIssuerBuilder {
    algorithm: Algorithm,
    audience: String,
    max_age: Duration,
}

impl TestIssuerBuilder {
    /// The algorithm of the first key and of every key rotated in (default ES256).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The audience tokens name unless told otherwise (default [`DEFAULT_AUDIENCE`]).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The JWKS `Cache-Control: max-age` (default 300 s; whole seconds).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving. Panics if no loopback port can be bound (a
    /// test cannot go on without it).
    pub async fn start(self) -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the test issuer binds a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let first = SigningKey::generate(self.algorithm);
        let state = Arc::new(IssuerState {
            url: format!("http://127.0.0.1:{port}"),
            audience: self.audience,
            algorithm: self.algorithm,
            keys: Mutex::new(Keys {
                published: vec![first.clone()],
                active: first,
            }),
            available: AtomicBool::new(true),
            max_age_secs: AtomicU64::new(self.max_age.as_secs()),
            jwks_fetches: AtomicUsize::new(0),
            metadata_fetches: AtomicUsize::new(0),
        });
        let server = tokio::spawn(server::serve(listener, Arc::clone(&state)));
        TestIssuer { state, server }
    }
}

impl TestIssuer {
    /// An ES256 issuer for [`DEFAULT_AUDIENCE`], JWKS `max-age` 300 s.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    pub fn builder() -> TestIssuerBuilder {
        TestIssuerBuilder {
            algorithm: Algorithm::Es256,
            audience: DEFAULT_AUDIENCE.into(),
            max_age: Duration::from_secs(300),
        }
    }

    /// The issuer identifier (`iss`), `http://127.0.0.1:PORT`: what an API's `issuer`
    /// setting names. Its metadata is at the RFC 8414 well-known path under it.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// `{url}/.well-known/jwks.json`, for APIs configured with an explicit JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.state.url)
    }

    /// A valid access token of this issuer, to be changed as the test needs and minted.
    pub fn token(&self) -> TokenBuilder<'_> {
        TokenBuilder::new(&self.state)
    }

    /// A verifier configuration trusting this issuer for `audience` (keys discovered).
    pub fn verifier_config(&self, audience: &str) -> VerifierConfig {
        VerifierConfig::new(self.url(), audience)
    }

    /// A started verifier of this issuer's tokens for `audience`, its keys already fetched.
    pub async fn verifier(&self, audience: &str) -> TokenVerifier {
        self.verifier_with(audience, |_| {}).await
    }

    /// Like [`verifier`](Self::verifier), with the configuration changed by `edit` first.
    pub async fn verifier_with(
        &self,
        audience: &str,
        edit: impl FnOnce(&mut VerifierConfig),
    ) -> TokenVerifier {
        let mut config = self.verifier_config(audience);
        edit(&mut config);
        let verifier = TokenVerifier::start(config).expect("a test verifier configuration");
        verifier.wait_until_ready(Duration::from_secs(5)).await;
        verifier
    }

    /// The key that signs minted tokens now.
    pub fn active_key(&self) -> SigningKey {
        self.state.active_key()
    }

    /// The `kid`s of the JWKS, in publication order.
    pub fn published_kids(&self) -> Vec<String> {
        let keys = self.state.keys();
        keys.published
            .iter()
            .map(|key| key.kid().to_owned())
            .collect()
    }

    /// An emergency rotation: a new key is published and signs from now on, with no time
    /// for anyone to fetch it first. The old key stays published. Returns the new `kid`.
    pub fn rotate_now(&self) -> String {
        let kid = self.publish_new_key();
        self.activate(&kid);
        kid
    }

    /// The first half of a scheduled rotation: a new key is published but signs nothing
    /// until [`activate`](Self::activate). Returns its `kid`.
    pub fn publish_new_key(&self) -> String {
        let key = SigningKey::generate(self.state.algorithm);
        let kid = key.kid().to_owned();
        self.publish(&key);
        kid
    }

    /// Publishes `key` (of any algorithm) without signing with it.
    pub fn publish(&self, key: &SigningKey) {
        let mut keys = self.state.keys();
        keys.published
            .retain(|published| published.kid() != key.kid());
        keys.published.push(key.clone());
    }

    /// Makes the published key `kid` the one that signs; returns whether there was one.
    pub fn activate(&self, kid: &str) -> bool {
        let mut keys = self.state.keys();
        match keys.published.iter().find(|key| key.kid() == kid).cloned() {
            Some(key) => {
                keys.active = key;
                true
            }
            None => false,
        }
    }

    /// Takes the key `kid` out of the JWKS (a retired key's end, or a revoked one). The
    /// issuer keeps signing with it if it is the active key: tokens nobody can verify.
    pub fn unpublish(&self, kid: &str) {
        self.state.keys().published.retain(|key| key.kid() != kid);
    }

    /// The JWKS `Cache-Control: max-age` from now on (whole seconds).
    pub fn set_max_age(&self, max_age: Duration) {
        self.state
            .max_age_secs
            .store(max_age.as_secs(), Ordering::SeqCst);
    }

    /// Answers 503 to every request until [`come_back`](Self::come_back).
    pub fn go_down(&self) {
        self.state.available.store(false, Ordering::SeqCst);
    }

    pub fn come_back(&self) {
        self.state.available.store(true, Ordering::SeqCst);
    }

    /// JWKS requests served so far (503s included).
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Metadata requests served so far (503s included).
    pub fn metadata_fetches(&self) -> usize {
        self.state.metadata_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
