//! JWKS and metadata, checked the way a standard client uses them: discovery first, then a
//! token verified by an independent JOSE library (jsonwebtoken) with nothing but the JWKS.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::helpers::{AuthServer, CLIENT_ID, spawn_auth_server, spawn_auth_server_with};

/// Verifies `token` the way a resource server would: discovery → jwks_uri → key by kid.
pub async fn verify_independently(server: &AuthServer, token: &str, audience: &str) -> Value {
    let metadata = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let jwks_uri = metadata["jwks_uri"].as_str().unwrap();
    let jwks: JwkSet = server
        .http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_with(&jwks, token, metadata["issuer"].as_str().unwrap(), audience)
}

pub fn verify_with(jwks: &JwkSet, token: &str, issuer: &str, audience: &str) -> Value {
    let header = decode_header(token).expect("JWS header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the token's kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<Value>(token, &key, &validation)
        .expect("token verifies")
        .claims
}

#[tokio::test]
async fn a_token_verifies_with_an_independent_library_using_only_discovery_and_the_jwks() {
    let (server, _db) = spawn_auth_server().await;
    let token = server.access_token().await;

    let claims = verify_independently(&server, &token, "players-api").await;

    assert_eq!(claims["client_id"], CLIENT_ID);
}

#[tokio::test]
async fn a_tampered_token_does_not_verify() {
    let (server, _db) = spawn_auth_server().await;
    let token = server.access_token().await;
    let jwks: JwkSet =
        serde_json::from_value(server.get_json("/.well-known/jwks.json").await).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let (_, mut claims) = crate::helpers::decode_unverified(&token);
    claims["scope"] = "players:admin".into();
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");

    let header = decode_header(&tampered).unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["players-api"]);

    assert!(decode::<Value>(&tampered, &key, &validation).is_err());
}

#[tokio::test]
async fn every_signing_algorithm_issues_tokens_an_independent_library_verifies() {
    for (alg, kty) in [
        ("EdDSA", "OKP"),
        ("RS256", "RSA"),
        ("PS256", "RSA"),
        ("ES256", "EC"),
    ] {
        let (server, _db) = spawn_auth_server_with(|s| {
            s.signing_alg = auth_server::crypto::SigningAlgorithm::parse(alg).unwrap();
        })
        .await;
        let token = server.access_token().await;

        let jwks = server.get_json("/.well-known/jwks.json").await;
        assert_eq!(jwks["keys"][0]["alg"], alg);
        assert_eq!(jwks["keys"][0]["kty"], kty);
        let (header, _) = crate::helpers::decode_unverified(&token);
        assert_eq!(header["alg"], alg);
        verify_independently(&server, &token, "players-api").await;
    }
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only_with_kid_alg_and_use() {
    let (server, _db) = spawn_auth_server().await;

    let response = server
        .http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(cache, "public, max-age=300");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["crv"], "P-256");
    assert!(
        key["kid"].as_str().is_some_and(|k| k.len() == 43),
        "RFC 7638 thumbprint: {key}"
    );
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "JWKS leaks {private}");
    }
}

#[tokio::test]
async fn metadata_names_everything_a_client_discovers_under_the_issuer() {
    let (server, _db) = spawn_auth_server().await;

    let metadata = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let openid = server.get_json("/.well-known/openid-configuration").await;

    let issuer = &server.address;
    assert_eq!(metadata["issuer"], *issuer);
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/auth/token"));
    assert_eq!(
        metadata["jwks_uri"],
        format!("{issuer}/.well-known/jwks.json")
    );
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "password",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        format!("{issuer}/auth/introspect")
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        format!("{issuer}/auth/revoke")
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        metadata["scopes_supported"],
        serde_json::json!(["players:read", "players:write", "squad:admin"])
    );
    assert_eq!(metadata["response_types_supported"], serde_json::json!([]));
    assert_eq!(openid, metadata);
}

#[tokio::test]
async fn the_issuer_in_tokens_and_metadata_is_the_configured_public_url() {
    // Off localhost the server runs as in production: no development mode, no published
    // development secret.
    const OWN_SECRET: &str = "a-production-secret-of-our-own";
    let (server, _db) = spawn_auth_server().await;
    let mut settings = server.settings.clone();
    settings.dev = false;
    settings.issuer = "https://gateway.example.com/".parse().unwrap();
    settings.users.clear();
    settings.clients.truncate(1);
    settings.clients[0].client_secret = None;
    settings.clients[0].client_secret_hash =
        Some(auth_server::crypto::hash_secret(OWN_SECRET).unwrap());
    let server = {
        server.stop().await;
        AuthServer::start(settings).await
    };

    let metadata = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let token = server
        .access_token_for(crate::helpers::CLIENT_ID, OWN_SECRET, &[])
        .await;

    assert_eq!(metadata["issuer"], "https://gateway.example.com");
    assert_eq!(
        metadata["token_endpoint"],
        "https://gateway.example.com/auth/token"
    );
    assert_eq!(
        crate::helpers::decode_unverified(&token).1["iss"],
        "https://gateway.example.com"
    );
}

#[tokio::test]
async fn health_docs_and_the_spec_are_served() {
    let (server, _db) = spawn_auth_server().await;

    assert_eq!(server.get_json("/health/live").await["status"], "ok");
    assert_eq!(server.get_json("/health/ready").await["status"], "ok");
    let spec = server.get_json("/openapi.json").await;
    assert!(spec["paths"]["/auth/token"]["post"].is_object());
    let docs = server.http.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    server.access_token().await;
    let metrics = server.metrics().await;
    assert!(metrics.contains("tokens_issued_total"), "{metrics}");
}
