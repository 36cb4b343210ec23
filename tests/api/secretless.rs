//! Machine clients without shared secrets, end to end over real sockets and the test database:
//! `private_key_jwt` (keys registered inline or at a `jwks_uri`), workload identity federation
//! (a token from a trusted "cluster" issuer), and DPoP-bound tokens from the token endpoint to
//! the players API. Every refusal in its standard's shape, none a 500.

use reqwest::Response;
use serde_json::{Value, json};
use token_verifier::Algorithm;
use token_verifier::test_issuer::{DpopKey, SigningKey, TestIssuer};

use crate::api_helpers::{ResourceApi, api_settings, new_player, start};
use crate::helpers::{
    AuthServer, CLIENT_ID, CLIENT_SECRET, TestDb, assert_oauth_error_code, auth_settings, cli,
    decode_unverified, new_kek, start_with_own_issuer, urlencode,
};
use auth_server::config::{BootstrapClient, TrustedIssuer};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const KEYED: &str = "billing";
const FEDERATED: &str = "payments";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:payments:billing";

/// What the tests share: a key host standing in for the client's keys (its JWKS at a URL, its
/// tokens as assertions), a "cluster" issuer of workload identities, and the auth-server.
struct Setup {
    server: AuthServer,
    keys: TestIssuer,
    cluster: TestIssuer,
    _db: TestDb,
    /// The inline-JWKS client's key.
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start(edit: impl FnOnce(&mut auth_server::Settings)) -> Self {
        let db = TestDb::new().await;
        Self::start_on(db, &new_kek(), edit).await
    }

    async fn start_on(
        db: TestDb,
        kek: &str,
        edit: impl FnOnce(&mut auth_server::Settings),
    ) -> Self {
        let keys = TestIssuer::start().await;
        let cluster = TestIssuer::start().await;
        let key = SigningKey::generate(Algorithm::Es256);
        let dir = tempfile::tempdir().unwrap();
        let jwks_file = dir.path().join("billing.jwks.json");
        std::fs::write(&jwks_file, json!({"keys": [key.public_jwk()]}).to_string()).unwrap();
        let mut settings = auth_settings(&db, kek);
        settings.clients.push(BootstrapClient {
            client_id: KEYED.into(),
            scopes: vec!["players:write".into()],
            audiences: vec!["players-api".into()],
            jwks_file: Some(jwks_file),
            ..BootstrapClient::default()
        });
        settings.clients.push(BootstrapClient {
            client_id: FEDERATED.into(),
            scopes: vec!["players:read".into()],
            audiences: vec!["players-api".into()],
            federated_issuer: Some(cluster.url().to_owned()),
            federated_subject: Some(SERVICE_ACCOUNT.into()),
            ..BootstrapClient::default()
        });
        settings.trusted_issuers.push(TrustedIssuer {
            issuer: cluster.url().to_owned(),
            jwks_uri: Some(cluster.jwks_url()),
            jwks_file: None,
            audience: None,
        });
        edit(&mut settings);
        let server = start_with_own_issuer(settings).await;
        Self {
            server,
            keys,
            cluster,
            _db: db,
            key,
            _dir: dir,
        }
    }

    fn issuer(&self) -> String {
        self.server.settings.issuer_str()
    }

    /// A valid `private_key_jwt` assertion of `KEYED`, signed with its registered key.
    fn assertion(&self) -> String {
        self.assertion_with(|b| b)
    }

    fn assertion_with(
        &self,
        edit: impl FnOnce(
            token_verifier::test_issuer::TokenBuilder<'_>,
        ) -> token_verifier::test_issuer::TokenBuilder<'_>,
    ) -> String {
        let builder = self
            .keys
            .token()
            .signed_by(&self.key)
            .header("typ", "JWT")
            .claim("iss", KEYED)
            .subject(KEYED)
            .audience(&self.issuer())
            .without_claim("client_id")
            .without_claim("nbf")
            .claim("jti", uuid::Uuid::new_v4().to_string());
        edit(builder).mint()
    }

    /// The cluster's service-account token for `SERVICE_ACCOUNT`, audience our issuer.
    fn workload_token(&self) -> String {
        self.cluster
            .token()
            .header("typ", "JWT")
            .subject(SERVICE_ACCOUNT)
            .audience(&self.issuer())
            .without_claim("client_id")
            .expires_in(std::time::Duration::from_secs(3600))
            .mint()
    }

    async fn with_assertion(&self, assertion: &str, extra: &[(&str, &str)]) -> Response {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(extra);
        self.server
            .http
            .post(self.server.url("/auth/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

async fn token_of(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_private_key_jwt_client_gets_the_same_token_as_with_a_secret() {
    let setup = Setup::start(|_| {}).await;

    let body = token_of(setup.with_assertion(&setup.assertion(), &[]).await).await;

    assert_eq!(body["token_type"], "Bearer");
    let (header, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], KEYED);
    assert_eq!(claims["client_id"], KEYED);
    assert_eq!(claims["aud"], "players-api");
    assert_eq!(claims["scope"], "players:write");
    // The client id may be sent too, and `aud` may name the token endpoint instead.
    let endpoint = format!("{}/auth/token", setup.issuer());
    let assertion = setup.assertion_with(|b| b.audience(&endpoint));
    token_of(
        setup
            .with_assertion(&assertion, &[("client_id", KEYED)])
            .await,
    )
    .await;
    // An assertion valid for an hour but signed just now (authlib's default) is fresh enough:
    // its age is bounded, not its lifetime.
    let hour_long = setup.assertion_with(|b| b.expires_in(std::time::Duration::from_secs(3600)));
    token_of(setup.with_assertion(&hour_long, &[]).await).await;
    // Once.
    assert_oauth_error_code(
        setup.with_assertion(&hour_long, &[]).await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn an_assertion_is_accepted_once_even_by_another_instance() {
    let db = TestDb::new().await;
    let kek = new_kek();
    let first = Setup::start_on(db, &kek, |_| {}).await;
    // A second instance on the same database.
    let mut settings = first.server.settings.clone();
    settings.bind = "127.0.0.1:0".parse().unwrap();
    let second = AuthServer::start(settings).await;
    let assertion = first.assertion();

    token_of(first.with_assertion(&assertion, &[]).await).await;
    let replay = |server: &AuthServer| {
        server
            .http
            .post(server.url("/auth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
    };
    assert_oauth_error_code(replay(&second).await.unwrap(), 401, "invalid_client").await;
    assert_oauth_error_code(replay(&first.server).await.unwrap(), 401, "invalid_client").await;
}

#[tokio::test]
async fn every_bad_assertion_is_401_invalid_client_never_a_500() {
    let setup = Setup::start(|_| {}).await;
    let now = crate::helpers::now_secs();
    let other_key = SigningKey::generate(Algorithm::Es256);
    let hmac = {
        // alg HS256 keyed with the client's public JWK: the classic confusion attack.
        use josekit::jws::{HS256, JwsHeader};
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let claims =
            json!({"iss": KEYED, "sub": KEYED, "aud": setup.issuer(), "exp": now + 60, "jti": "h"});
        let signer = HS256
            .signer_from_bytes(setup.key.public_jwk().to_string().as_bytes())
            .unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).unwrap()
    };
    let unsigned = {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(json!({"alg": "none"})),
            b64(
                json!({"iss": KEYED, "sub": KEYED, "aud": setup.issuer(), "exp": now + 60, "jti": "n"})
            )
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "another audience",
            setup.assertion_with(|b| b.audience("https://elsewhere.example")),
        ),
        ("expired", setup.assertion_with(|b| b.expired())),
        (
            "signed too long ago",
            setup.assertion_with(|b| b.claim("iat", now - 600)),
        ),
        (
            "no iat and expires too far ahead",
            setup.assertion_with(|b| {
                b.without_claim("iat")
                    .expires_in(std::time::Duration::from_secs(3600))
            }),
        ),
        ("no exp", setup.assertion_with(|b| b.without_claim("exp"))),
        ("no jti", setup.assertion_with(|b| b.without_claim("jti"))),
        (
            "iss is not the client",
            setup.assertion_with(|b| b.claim("iss", "someone")),
        ),
        (
            "sub is another client",
            setup.assertion_with(|b| b.subject(CLIENT_ID).claim("iss", CLIENT_ID)),
        ),
        (
            "signed by another key",
            setup.assertion_with(|b| b.signed_by(&other_key)),
        ),
        (
            "typ at+jwt",
            setup.assertion_with(|b| b.header("typ", "at+jwt")),
        ),
        ("HS256 with the public key", hmac),
        ("alg none", unsigned),
        ("garbage", "not-a-jwt".into()),
        (
            "the workload token of another client",
            setup.workload_token(),
        ),
    ];
    for (why, assertion) in cases {
        let response = setup
            .with_assertion(&assertion, &[("client_id", KEYED)])
            .await;
        assert_eq!(response.status(), 401, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{why}: {body}");
    }
    // A secret for a client that has none, and an assertion for a client with a secret.
    let response = setup
        .server
        .token_basic(KEYED, "guess", &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error_code(response, 401, "invalid_client").await;
    let assertion = setup.assertion_with(|b| b.claim("iss", CLIENT_ID).subject(CLIENT_ID));
    let response = setup.with_assertion(&assertion, &[]).await;
    assert_oauth_error_code(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn one_authentication_method_per_request() {
    let setup = Setup::start(|_| {}).await;
    let assertion = setup.assertion();

    let both = setup
        .server
        .http
        .post(setup.server.url("/auth/token"))
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error_code(both, 400, "invalid_request").await;

    let wrong_type = setup
        .server
        .http
        .post(setup.server.url("/auth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:saml"),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error_code(wrong_type, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_client_with_a_jwks_uri_is_followed_through_a_key_rotation() {
    let setup = Setup::start(|_| {}).await;
    let printed = cli(
        &setup.server.settings,
        &[
            "clients",
            "add",
            "--id",
            "rotating",
            "--scope",
            "players:write",
            "--audience",
            "players-api",
            "--jwks-uri",
            &setup.keys.jwks_url(),
        ],
    )
    .await
    .unwrap();
    assert!(
        printed.contains("auth_method:   private_key_jwt"),
        "{printed}"
    );
    assert!(!printed.contains("client_secret"), "{printed}");
    let assertion = |setup: &Setup| {
        setup
            .keys
            .token()
            .header("typ", "JWT")
            .claim("iss", "rotating")
            .subject("rotating")
            .audience(&setup.issuer())
            .without_claim("client_id")
            .claim("jti", uuid::Uuid::new_v4().to_string())
            .mint()
    };
    // The new client reaches the server within the sync bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = setup.with_assertion(&assertion(&setup), &[]).await;
        if response.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the client never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    setup.keys.rotate_now();

    token_of(setup.with_assertion(&assertion(&setup), &[]).await).await;
}

#[tokio::test]
async fn a_workload_authenticates_with_its_cluster_token_and_no_secret() {
    let setup = Setup::start(|_| {}).await;
    let token = setup.workload_token();

    // The workload's token is reused until the cluster refreshes it.
    for _ in 0..2 {
        let body = token_of(
            setup
                .with_assertion(&token, &[("client_id", FEDERATED)])
                .await,
        )
        .await;
        let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
        assert_eq!(claims["sub"], FEDERATED);
        assert_eq!(claims["scope"], "players:read");
    }

    let cases: [(&str, String); 4] = [
        (
            "another service account",
            setup
                .cluster
                .token()
                .header("typ", "JWT")
                .subject("system:serviceaccount:payments:other")
                .audience(&setup.issuer())
                .mint(),
        ),
        (
            "another audience",
            setup
                .cluster
                .token()
                .header("typ", "JWT")
                .subject(SERVICE_ACCOUNT)
                .audience("https://kubernetes.default.svc")
                .mint(),
        ),
        (
            "expired",
            setup
                .cluster
                .token()
                .header("typ", "JWT")
                .subject(SERVICE_ACCOUNT)
                .audience(&setup.issuer())
                .expired()
                .mint(),
        ),
        (
            "another issuer's key",
            setup
                .keys
                .token()
                .header("typ", "JWT")
                .claim("iss", setup.cluster.url())
                .subject(SERVICE_ACCOUNT)
                .audience(&setup.issuer())
                .mint(),
        ),
    ];
    for (why, token) in cases {
        let response = setup
            .with_assertion(&token, &[("client_id", FEDERATED)])
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (status.as_u16(), &body["error"]),
            (401, &json!("invalid_client")),
            "{why}"
        );
    }
}

#[tokio::test]
async fn metadata_advertises_private_key_jwt_and_dpop() {
    let setup = Setup::start(|_| {}).await;
    let metadata = setup
        .server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{methods}");
    let algs = metadata["dpop_signing_alg_values_supported"].to_string();
    assert!(algs.contains("ES256") && !algs.contains("HS256"), "{algs}");
    let algs = metadata["token_endpoint_auth_signing_alg_values_supported"].to_string();
    assert!(algs.contains("ES256") && !algs.contains("none"), "{algs}");
}

/// A players API that knows its public URL (a DPoP proof names it).
async fn players_api(issuer: &str) -> ResourceApi {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let db = TestDb::new().await;
    let mut settings = api_settings(&db, issuer);
    settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
    settings.public_url = format!("http://127.0.0.1:{port}");
    let api = start(settings, db).await;
    api.wait_until_ready().await;
    api
}

async fn dpop_token(setup: &Setup, key: &DpopKey) -> Response {
    let url = format!("{}/auth/token", setup.issuer());
    setup
        .server
        .http
        .post(setup.server.url("/auth/token"))
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
        .header("dpop", key.proof("POST", &url, None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dpop_bound_token_works_only_with_a_proof_of_its_key() {
    let setup = Setup::start(|_| {}).await;
    let api = players_api(&setup.issuer()).await;
    let key = DpopKey::generate();

    let body = token_of(dpop_token(&setup, &key).await).await;
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode_unverified(&token);
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint());

    let write = |number: u32, scheme: &str, proof: Option<String>| {
        let mut request = api
            .http
            .post(api.url("/players"))
            .header("authorization", format!("{scheme} {token}"))
            .json(&new_player(number));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let url = api.url("/players");
    let ok = write(60, "DPoP", Some(key.proof("POST", &url, Some(&token))))
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);

    let as_bearer = write(61, "Bearer", None).await.unwrap();
    assert_eq!(as_bearer.status(), 401);
    assert!(
        as_bearer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    let no_proof = write(62, "DPoP", None).await.unwrap();
    assert_eq!(no_proof.status(), 401);
    let other_key = write(
        63,
        "DPoP",
        Some(DpopKey::generate().proof("POST", &url, Some(&token))),
    )
    .await
    .unwrap();
    assert_eq!(other_key.status(), 401);
    let body: Value = other_key.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(api.player(61).await.is_none() && api.player(63).await.is_none());

    // Introspection says it is bound, and to which key.
    let introspection: Value = setup
        .server
        .http
        .post(setup.server.url("/auth/introspect"))
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["token_type"], "DPoP");
    assert_eq!(introspection["cnf"]["jkt"], key.thumbprint());
}

#[tokio::test]
async fn bad_proofs_at_the_token_endpoint_are_400_invalid_dpop_proof() {
    let setup = Setup::start(|settings| {
        settings.clients.push(BootstrapClient {
            client_id: "bound".into(),
            client_secret: Some("bound-secret-0123".into()),
            scopes: vec!["players:write".into()],
            audiences: vec!["players-api".into()],
            dpop_bound: true,
            ..BootstrapClient::default()
        });
    })
    .await;
    let key = DpopKey::generate();
    let url = format!("{}/auth/token", setup.issuer());
    let send = |id: &str, secret: &str, proofs: Vec<String>| {
        let mut request = setup
            .server
            .http
            .post(setup.server.url("/auth/token"))
            .basic_auth(urlencode(id), Some(urlencode(secret)))
            .form(&[("grant_type", "client_credentials")]);
        for proof in proofs {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let replayed = key.proof("POST", &url, None);
    token_of(
        send(CLIENT_ID, CLIENT_SECRET, vec![replayed.clone()])
            .await
            .unwrap(),
    )
    .await;
    let cases = vec![
        (
            "another URL",
            vec![key.proof("POST", "https://elsewhere.example/auth/token", None)],
        ),
        ("another method", vec![key.proof("GET", &url, None)]),
        (
            "two proofs",
            vec![key.proof("POST", &url, None), key.proof("POST", &url, None)],
        ),
        ("replayed", vec![replayed]),
        (
            "old",
            vec![key.proof_with(&json!({"jti": "old", "htm": "POST", "htu": url, "iat": 1}))],
        ),
        ("garbage", vec!["x.y.z".into()]),
    ];
    for (why, proofs) in cases {
        let response = send(CLIENT_ID, CLIENT_SECRET, proofs).await.unwrap();
        assert_eq!(response.status(), 400, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}: {body}");
    }
    // A client registered as DPoP-bound must send a proof.
    let response = send("bound", "bound-secret-0123", vec![]).await.unwrap();
    assert_oauth_error_code(response, 400, "invalid_dpop_proof").await;
    let response = send(
        "bound",
        "bound-secret-0123",
        vec![key.proof("POST", &url, None)],
    )
    .await
    .unwrap();
    assert_eq!(token_of(response).await["token_type"], "DPoP");
}

#[tokio::test]
async fn with_nonces_required_a_proof_without_one_gets_use_dpop_nonce_then_succeeds() {
    let setup = Setup::start(|settings| settings.dpop_require_nonce = true).await;
    let key = DpopKey::generate();
    let url = format!("{}/auth/token", setup.issuer());

    let response = dpop_token(&setup, &key).await;
    assert_eq!(response.status(), 400);
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");

    let now = crate::helpers::now_secs();
    let proof = key.proof_with(&json!({
        "jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": url, "iat": now, "nonce": nonce,
    }));
    let response = setup
        .server
        .http
        .post(setup.server.url("/auth/token"))
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
        .header("dpop", proof)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token_of(response).await["token_type"], "DPoP");
}

/// Runs the README's shell client (`deploy/examples/secretless-client.sh`) in `dir`.
async fn shell_client(dir: &std::path::Path, args: &[&str], dpop: bool) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/secretless-client.sh"
    );
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .args(args)
        .env("DPOP", if dpop { "1" } else { "0" })
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_readme_shell_client_gets_tokens_with_private_key_jwt_and_dpop() {
    let setup = Setup::start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    shell_client(dir.path(), &["keys", "shell"], false).await;
    let jwks = dir.path().join("shell.jwks.json");
    cli(
        &setup.server.settings,
        &[
            "clients",
            "add",
            "--id",
            "shell",
            "--scope",
            "players:write",
            "--audience",
            "players-api",
            "--jwks-file",
            jwks.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    let issuer = setup.issuer();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let body: Value = loop {
        let printed = shell_client(dir.path(), &["token", "shell", &issuer], false).await;
        let body: Value = serde_json::from_str(&printed).unwrap();
        if body["access_token"].is_string() || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(body["token_type"], "Bearer", "{body}");

    let printed = shell_client(dir.path(), &["token", "shell", &issuer], true).await;
    let body: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");

    // `call` writes to the players API with the bound token and a proof of the same key.
    let api = players_api(&issuer).await;
    let token = body["access_token"].as_str().unwrap();
    let player = r#"{"firstName":"Shell","lastName":"Client","squadNumber":91,"position":"Goalkeeper","abbrPosition":"GK","team":"Loopback FC","league":"Test League","dateOfBirth":"1990-01-01","starting11":false}"#;
    let url = api.url("/players");
    let call = |url: String| {
        let dir = dir.path().to_owned();
        async move {
            let args = [
                "call",
                "shell",
                "POST",
                url.as_str(),
                token,
                "-H",
                "Content-Type: application/json",
                "-d",
                player,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ];
            shell_client(&dir, &args, false).await
        }
    };
    assert_eq!(call(url.clone()).await, "201");
    // The same request with the token as a bearer token (no proof) is refused.
    let bearer = api
        .http
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(player)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
}

/// The replay store's grouped writes, on the test database through two connections (two
/// instances): of many concurrent uses of each key, spread over both, exactly one is the first;
/// an expired record does not block its key.
#[tokio::test]
async fn of_many_concurrent_uses_of_one_jti_on_two_instances_exactly_one_is_first() {
    use auth_server::stores::ReplayStore;
    use std::sync::Arc;

    let db = TestDb::new().await;
    // The server makes the schema; then two connections as two instances would hold them.
    let server = AuthServer::start(auth_settings(&db, &new_kek())).await;
    let settings = server.settings.clone();
    let open = || async {
        let availability = Arc::new(auth_server::availability::Availability::new(
            std::time::Duration::from_secs(60),
        ));
        Arc::new(
            auth_server::startup::open_database(&settings, false, availability)
                .await
                .unwrap()
                .replays(),
        )
    };
    let instances = [open().await, open().await];
    let now = crate::helpers::now_secs();

    let mut uses = tokio::task::JoinSet::new();
    for key in 0..40u8 {
        for attempt in 0..4usize {
            let store = Arc::clone(&instances[attempt % 2]);
            uses.spawn(async move {
                let first = store.first_use(&[key; 32], now + 60, now).await.unwrap();
                (key, first)
            });
        }
    }
    let mut firsts = [0u32; 40];
    while let Some(joined) = uses.join_next().await {
        let (key, first) = joined.unwrap();
        firsts[usize::from(key)] += u32::from(first);
    }
    assert_eq!(firsts, [1; 40], "first uses per key");

    // Recorded until it expires, then free again.
    let key = [200u8; 32];
    assert!(instances[0].first_use(&key, now + 5, now).await.unwrap());
    assert!(
        !instances[1]
            .first_use(&key, now + 5, now + 4)
            .await
            .unwrap()
    );
    assert!(
        instances[1]
            .first_use(&key, now + 70, now + 6)
            .await
            .unwrap()
    );
    assert!(
        !instances[0]
            .first_use(&key, now + 70, now + 7)
            .await
            .unwrap()
    );
}

/// Forged assertions are throttled per source address: past the limit, the address gets 429
/// (even with a good assertion) until the window passes. Valid assertions do not count.
#[tokio::test]
async fn forged_assertions_from_one_address_are_throttled() {
    let setup = Setup::start(|s| s.throttle.max_failures_per_address = 3).await;
    let other_key = SigningKey::generate(Algorithm::Es256);
    for _ in 0..5 {
        token_of(setup.with_assertion(&setup.assertion(), &[]).await).await;
    }
    for _ in 0..3 {
        let forged = setup.assertion_with(|b| b.signed_by(&other_key));
        assert_oauth_error_code(
            setup.with_assertion(&forged, &[]).await,
            401,
            "invalid_client",
        )
        .await;
    }
    let throttled = setup.with_assertion(&setup.assertion(), &[]).await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
}

/// Introspection and revocation name a repeated assertion parameter, as the token endpoint does.
#[tokio::test]
async fn a_repeated_client_assertion_at_introspection_is_named() {
    let setup = Setup::start(|_| {}).await;
    let assertion = setup.assertion();
    for path in ["/auth/introspect", "/auth/revoke"] {
        let response = setup
            .server
            .http
            .post(setup.server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token=t&client_assertion_type={}&client_assertion={assertion}&client_assertion={assertion}",
                urlencode(JWT_BEARER)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
        assert_eq!(
            body["error_description"], "parameter client_assertion is repeated",
            "{path}"
        );
    }
}
