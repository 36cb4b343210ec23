//! DPoP-bound tokens (RFC 9449 §7) at a resource server, over real sockets: accepted with a
//! proof of their key made for this request, refused (401 and a `DPoP` challenge) without
//! one, with one from another key, for another request or token, too old, or used twice.

#![cfg(feature = "axum")]

mod support;

use axum::{Router, routing::post};
use serde_json::json;
use support::{TestIssuer, now, valid};
use token_verifier::{
    TokenVerifier, VerifierConfig,
    axum::{Scope, Scoped},
    dpop::{access_token_hash, algorithm_names},
    test_issuer::DpopKey,
};

struct WritePlayers;
impl Scope for WritePlayers {
    const NAME: &'static str = "players:write";
}

async fn write(caller: Scoped<WritePlayers>) -> String {
    format!("{} bound={}", caller.subject, caller.is_dpop_bound())
}

struct Api {
    issuer: TestIssuer,
    /// `http://127.0.0.1:port`
    address: String,
    /// What every challenge ends with when the verifier knows its public URL (RFC 9728 §5.1).
    metadata: String,
}

impl Api {
    async fn start(edit: impl FnOnce(&mut VerifierConfig, &str)) -> Self {
        let issuer = support::issuer().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let verifier: TokenVerifier =
            support::verifier_with(&issuer, |config| edit(config, &address)).await;
        let metadata = match verifier.config().public_url {
            Some(_) => {
                format!(r#", resource_metadata="{address}/.well-known/oauth-protected-resource""#)
            }
            None => String::new(),
        };
        let app = Router::new()
            .route("/api/players/{id}", post(write))
            .with_state(verifier);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            issuer,
            address,
            metadata,
        }
    }

    /// A verifier told its public URL (as behind a gateway).
    async fn with_public_url() -> Self {
        Self::start(|config, address| config.public_url = Some(address.to_owned())).await
    }

    fn url(&self) -> String {
        format!("{}/api/players/7", self.address)
    }

    async fn post(
        &self,
        authorization: Option<String>,
        proofs: &[String],
    ) -> (u16, String, String) {
        let mut request = reqwest::Client::new().post(self.url());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        for proof in proofs {
            request = request.header("dpop", proof);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, challenge, response.text().await.unwrap())
    }
}

impl Api {
    fn dpop_challenge(&self, error: &str, description: &str) -> String {
        format!(
            r#"DPoP realm="players-api", error="{error}", error_description="{description}", algs="{}"{}"#,
            algorithm_names(),
            self.metadata
        )
    }
}

#[tokio::test]
async fn a_bound_token_with_a_proof_of_its_key_for_this_request_is_accepted() {
    let api = Api::with_public_url().await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();

    let proof = key.proof("POST", &api.url(), Some(&token));
    let (status, _, body) = api.post(Some(format!("DPoP {token}")), &[proof]).await;

    assert_eq!((status, body.as_str()), (200, "foobarbaz bound=true"));
    // A new proof for each request: the same token goes on working.
    let proof = key.proof("POST", &api.url(), Some(&token));
    let (status, _, _) = api.post(Some(format!("dpop {token}")), &[proof]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused_so_a_stolen_one_is_useless() {
    let api = Api::with_public_url().await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();

    let (status, challenge, body) = api.post(Some(format!("Bearer {token}")), &[]).await;

    assert_eq!(status, 401, "{body}");
    assert_eq!(
        challenge,
        api.dpop_challenge(
            "invalid_token",
            "token is DPoP-bound: send it with the DPoP scheme and a proof"
        )
    );
    // With a proof too, still not as Bearer.
    let proof = key.proof("POST", &api.url(), Some(&token));
    let (status, _, _) = api.post(Some(format!("Bearer {token}")), &[proof]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn every_wrong_proof_is_401_invalid_dpop_proof() {
    let api = Api::with_public_url().await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();
    let other_token = valid(&api.issuer).dpop_bound(&key).mint();
    let url = api.url();
    let claims = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = json!({
            "jti": format!("j-{}", rand_suffix()),
            "htm": "POST",
            "htu": url,
            "iat": now(),
            "ath": access_token_hash(&token),
        });
        edit(&mut claims);
        claims
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "no proof",
            vec![],
            "a DPoP proof is required with a DPoP-bound token",
        ),
        (
            "two proofs",
            vec![
                key.proof("POST", &url, Some(&token)),
                key.proof("POST", &url, Some(&token)),
            ],
            "a DPoP proof is required with a DPoP-bound token",
        ),
        (
            "another key",
            vec![DpopKey::generate().proof("POST", &url, Some(&token))],
            "the DPoP proof is signed by another key than the token is bound to",
        ),
        (
            "another method",
            vec![key.proof("PUT", &url, Some(&token))],
            "the DPoP proof is for another method",
        ),
        (
            "another URL",
            vec![key.proof(
                "POST",
                &format!("{}/api/players/8", api.address),
                Some(&token),
            )],
            "the DPoP proof is for another URL",
        ),
        (
            "another token",
            vec![key.proof("POST", &url, Some(&other_token))],
            "the DPoP proof is for another access token",
        ),
        (
            "no ath",
            vec![key.proof("POST", &url, None)],
            "the DPoP proof lacks a required claim",
        ),
        (
            "an old iat",
            vec![key.proof_with(&claims(&|c| c["iat"] = (now() - 3600).into()))],
            "the DPoP proof is too old or from the future",
        ),
        (
            "garbage",
            vec!["not.a.proof".to_owned()],
            "the DPoP proof is malformed",
        ),
    ];
    for (why, proofs, description) in cases {
        let (status, challenge, body) = api.post(Some(format!("DPoP {token}")), &proofs).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(
            challenge,
            api.dpop_challenge("invalid_dpop_proof", description),
            "{why}"
        );
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}");
    }
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let api = Api::with_public_url().await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();
    let proof = key.proof("POST", &api.url(), Some(&token));

    let (first, _, _) = api
        .post(Some(format!("DPoP {token}")), std::slice::from_ref(&proof))
        .await;
    let (second, challenge, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;

    assert_eq!((first, second), (200, 401));
    assert_eq!(
        challenge,
        api.dpop_challenge("invalid_dpop_proof", "the DPoP proof was already used")
    );
}

#[tokio::test]
async fn an_unbound_token_is_not_accepted_as_dpop() {
    let api = Api::with_public_url().await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).mint();
    let proof = key.proof("POST", &api.url(), Some(&token));

    let (status, challenge, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;

    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        api.dpop_challenge("invalid_token", "token is not DPoP-bound")
    );
    // As Bearer it is fine: DPoP is optional unless required.
    let (status, _, _) = api.post(Some(format!("Bearer {token}")), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_api_that_requires_dpop_refuses_bearer_tokens_and_challenges_with_dpop() {
    let api = Api::start(|config, address| {
        config.public_url = Some(address.to_owned());
        config.require_dpop = true;
    })
    .await;
    let token = valid(&api.issuer).mint();

    let (status, challenge, _) = api.post(Some(format!("Bearer {token}")), &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        api.dpop_challenge("invalid_token", "token is not DPoP-bound")
    );

    let (status, challenge, _) = api.post(None, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!(
            r#"DPoP realm="players-api", algs="{}"{}"#,
            algorithm_names(),
            api.metadata
        )
    );

    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();
    let proof = key.proof("POST", &api.url(), Some(&token));
    let (status, _, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_bound_token_without_the_scope_is_403_with_a_dpop_challenge() {
    let api = Api::with_public_url().await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer)
        .scope("players:read")
        .dpop_bound(&key)
        .mint();
    let proof = key.proof("POST", &api.url(), Some(&token));

    let (status, challenge, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;

    assert_eq!(status, 403);
    assert_eq!(
        challenge,
        format!(
            r#"DPoP realm="players-api", error="insufficient_scope", scope="players:write", algs="{}"{}"#,
            algorithm_names(),
            api.metadata
        )
    );
}

#[tokio::test]
async fn without_a_public_url_the_host_header_names_the_url() {
    let api = Api::start(|_, _| {}).await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();

    let proof = key.proof("POST", &api.url(), Some(&token));
    let (status, _, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;
    assert_eq!(status, 200);

    // Behind a gateway that is not the public URL: a proof for https://… fails without
    // `public_url`, which is why it must be configured there.
    let public = api.url().replace("http://", "https://");
    let proof = key.proof("POST", &public, Some(&token));
    let (status, _, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_public_url_with_a_path_prefix_is_what_the_proof_names() {
    let api = Api::start(|config, _| {
        config.public_url = Some("https://api.example/v1/".into());
    })
    .await;
    let key = DpopKey::generate();
    let token = valid(&api.issuer).dpop_bound(&key).mint();

    let proof = key.proof(
        "POST",
        "https://API.example:443/v1/api/players/7",
        Some(&token),
    );
    let (status, _, body) = api.post(Some(format!("DPoP {token}")), &[proof]).await;
    assert_eq!(status, 200, "{body}");

    let proof = key.proof("POST", &api.url(), Some(&token));
    let (status, _, _) = api.post(Some(format!("DPoP {token}")), &[proof]).await;
    assert_eq!(status, 401);
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
