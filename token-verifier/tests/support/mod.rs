//! A fake issuer for the verifier's tests: a real poem server on port 0 that publishes
//! metadata and a JWKS we control, counts fetches, and can be told to fail.

#![allow(dead_code)] // each test binary uses a different part

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::{
    jwk::{Jwk, alg::ed::EdCurve},
    jws::{ES256, EdDSA, JwsHeader, JwsSigner, PS256, RS256},
};
use poem::{
    EndpointExt, Response, Route, Server, get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};
use serde_json::{Value, json};
use token_verifier::{TokenVerifier, VerifierConfig};

pub const AUDIENCE: &str = "players-api";

/// A key the test issuer can sign with and publish.
pub struct SigningKey {
    pub kid: String,
    pub alg: &'static str,
    private_der: Vec<u8>,
    public_jwk: Jwk,
    pub public_pem: Vec<u8>,
}

impl SigningKey {
    pub fn es256(kid: &str) -> Self {
        let pair = ES256.generate_key_pair().unwrap();
        let (der, jwk, pem) = (
            pair.to_der_private_key(),
            pair.to_jwk_public_key(),
            pair.to_pem_public_key(),
        );
        Self::new(kid, "ES256", der, jwk, pem)
    }

    pub fn eddsa(kid: &str) -> Self {
        let pair = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        let (der, jwk, pem) = (
            pair.to_der_private_key(),
            pair.to_jwk_public_key(),
            pair.to_pem_public_key(),
        );
        Self::new(kid, "EdDSA", der, jwk, pem)
    }

    pub fn rs256(kid: &str) -> Self {
        let pair = RS256.generate_key_pair(2048).unwrap();
        let (der, jwk, pem) = (
            pair.to_der_private_key(),
            pair.to_jwk_public_key(),
            pair.to_pem_public_key(),
        );
        Self::new(kid, "RS256", der, jwk, pem)
    }

    pub fn ps256(kid: &str) -> Self {
        let pair = PS256.generate_key_pair(2048).unwrap();
        let (der, jwk, pem) = (
            pair.to_der_private_key(),
            pair.to_jwk_public_key(),
            pair.to_pem_public_key(),
        );
        Self::new(kid, "PS256", der, jwk, pem)
    }

    fn new(
        kid: &str,
        alg: &'static str,
        private_der: Vec<u8>,
        mut public_jwk: Jwk,
        public_pem: Vec<u8>,
    ) -> Self {
        public_jwk.set_key_id(kid);
        public_jwk.set_algorithm(alg);
        public_jwk.set_key_use("sig");
        Self {
            kid: kid.into(),
            alg,
            private_der,
            public_jwk,
            public_pem,
        }
    }

    /// The key as the issuer publishes it.
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.public_jwk.as_ref().clone())
    }

    pub fn jwk(&self) -> Jwk {
        self.public_jwk.clone()
    }

    /// A signer of this private key under `alg` (its own, or another that fits the key type).
    pub fn signer(&self, alg: &str) -> Box<dyn JwsSigner> {
        let der = &self.private_der;
        match alg {
            "ES256" => Box::new(ES256.signer_from_der(der).unwrap()),
            "EdDSA" => Box::new(EdDSA.signer_from_der(der).unwrap()),
            "RS256" => Box::new(RS256.signer_from_der(der).unwrap()),
            "PS256" => Box::new(PS256.signer_from_der(der).unwrap()),
            other => panic!("no test signer for {other}"),
        }
    }

    /// Signs `claims` under an access-token header naming this key, after `edit` had its way
    /// with the header, with `signer`.
    pub fn sign_full(
        &self,
        claims: &Value,
        edit: impl FnOnce(&mut JwsHeader),
        signer: &dyn JwsSigner,
    ) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_key_id(&self.kid);
        edit(&mut header);
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, signer).unwrap()
    }

    pub fn sign_with_header(&self, claims: &Value, edit: impl FnOnce(&mut JwsHeader)) -> String {
        self.sign_full(claims, edit, self.signer(self.alg).as_ref())
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(claims, |_| {})
    }
}

/// Builds a compact JWS by hand, for tokens no library would sign.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct IssuerState {
    issuer: Mutex<String>,
    keys: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    metadata_fetches: AtomicUsize,
    up: AtomicBool,
    max_age: AtomicU64,
}

/// The fake issuer.
pub struct TestIssuer {
    pub url: String,
    state: Arc<IssuerState>,
}

#[handler]
fn jwks(Data(state): Data<&Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if !state.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into();
    }
    let body = json!({"keys": *state.keys.lock().unwrap()});
    Response::builder()
        .content_type("application/json")
        .header(
            "Cache-Control",
            format!("public, max-age={}", state.max_age.load(Ordering::SeqCst)),
        )
        .body(body.to_string())
}

#[handler]
fn metadata(Data(state): Data<&Arc<IssuerState>>) -> Response {
    state.metadata_fetches.fetch_add(1, Ordering::SeqCst);
    if !state.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into();
    }
    let issuer = state.issuer.lock().unwrap().clone();
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/auth/token"),
    });
    Response::builder()
        .content_type("application/json")
        .body(body.to_string())
}

impl TestIssuer {
    /// Starts publishing `keys` with `Cache-Control: max-age=3600`.
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let state = Arc::new(IssuerState {
            issuer: Mutex::new(String::new()),
            keys: Mutex::new(keys.iter().map(|key| key.public_jwk()).collect()),
            jwks_fetches: AtomicUsize::new(0),
            metadata_fetches: AtomicUsize::new(0),
            up: AtomicBool::new(true),
            max_age: AtomicU64::new(3600),
        });
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        *state.issuer.lock().unwrap() = url.clone();
        let app = Route::new()
            .at("/.well-known/jwks.json", get(jwks))
            .at("/.well-known/oauth-authorization-server", get(metadata))
            .data(Arc::clone(&state));
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Self { url, state }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|key| key.public_jwk()).collect();
    }

    pub fn publish_raw(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    pub fn set_max_age(&self, seconds: u64) {
        self.state.max_age.store(seconds, Ordering::SeqCst);
    }

    pub fn go_down(&self) {
        self.state.up.store(false, Ordering::SeqCst);
    }

    pub fn come_back(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn metadata_fetches(&self) -> usize {
        self.state.metadata_fetches.load(Ordering::SeqCst)
    }

    /// Claims a valid players-api token from this issuer carries.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.url,
            "sub": "foobarbaz",
            "aud": AUDIENCE,
            "client_id": "foobarbaz",
            "scope": "players:write",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": format!("jti-{now}"),
        })
    }

    /// A verifier of this issuer's tokens, configured like `edit` says, with its keys fetched.
    pub async fn verifier_with(&self, edit: impl FnOnce(&mut VerifierConfig)) -> TokenVerifier {
        let mut config = VerifierConfig::new(&self.url, AUDIENCE);
        config.jwks_url = Some(self.jwks_url());
        edit(&mut config);
        let verifier = TokenVerifier::start(config).unwrap();
        verifier.wait_until_ready(Duration::from_secs(5)).await;
        verifier
    }

    pub async fn verifier(&self) -> TokenVerifier {
        self.verifier_with(|_| {}).await
    }
}
