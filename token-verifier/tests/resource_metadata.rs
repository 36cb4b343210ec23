//! RFC 9728 over real sockets, poem and axum side by side: the metadata document, and the
//! `resource_metadata` that every challenge names once the API knows its public URL.

#![cfg(all(feature = "poem", feature = "axum"))]

mod support;

use poem::EndpointExt;
use poem_openapi::{OpenApi, OpenApiService, payload::PlainText};
use serde_json::{Value, json};
use support::valid;
use token_verifier::{
    TokenVerifier,
    axum::{BearerLayer, Scope, Scoped, protected_resource_metadata},
    openapi::{OAuth2Bearer, ProtectedResourceApi},
    resource_metadata::WELL_KNOWN_PATH,
};

struct WritePlayers;
impl Scope for WritePlayers {
    const NAME: &'static str = "players:write";
}

#[derive(poem_openapi::OAuthScopes)]
enum PlayerScope {
    /// Write players.
    #[oai(rename = "players:write")]
    Write,
}

struct WriteApi;

#[OpenApi]
impl WriteApi {
    #[oai(path = "/write", method = "post")]
    async fn write(&self, auth: OAuth2Bearer<PlayerScope>) -> poem::Result<PlainText<String>> {
        Ok(PlainText(auth.require(PlayerScope::Write)?.subject))
    }
}

async fn axum_write(caller: Scoped<WritePlayers>) -> String {
    caller.subject.clone()
}

/// The same verifier behind a poem-openapi service and an axum router, each with `/write`
/// and the metadata route; their base URLs.
async fn serve_both(verifier: TokenVerifier) -> (String, String) {
    let poem_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let poem_address = format!("http://{}", poem_listener.local_addr().unwrap());
    drop(poem_listener);
    let service = OpenApiService::new((WriteApi, ProtectedResourceApi), "test", "1");
    let app = poem::Route::new().nest("/", service).data(verifier.clone());
    let bind = poem_address.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        poem::Server::new(poem::listener::TcpListener::bind(bind))
            .run(app)
            .await
    });

    let axum_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let axum_address = format!("http://{}", axum_listener.local_addr().unwrap());
    // The layer alone (no extractor) guards /guarded: its refusals name the metadata too.
    let guarded = axum::Router::new()
        .route("/guarded", axum::routing::post(|| async { "through" }))
        .route_layer(BearerLayer::new(verifier.clone()).require_scope("players:write"));
    let app = axum::Router::new()
        .route("/write", axum::routing::post(axum_write))
        .route(
            WELL_KNOWN_PATH,
            axum::routing::get(protected_resource_metadata),
        )
        .with_state(verifier)
        .merge(guarded);
    tokio::spawn(async move { axum::serve(axum_listener, app).await });

    (poem_address, axum_address)
}

/// GET (or POST with `token` when `post`) to `url`, retried while the server is starting.
async fn send(url: &str, post: bool, token: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let mut request = if post {
            client.post(url)
        } else {
            client.get(url)
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{url} did not answer");
}

fn challenge(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn with_a_public_url_the_document_names_it_and_every_challenge_names_the_document() {
    let issuer = support::issuer().await;
    let verifier = support::verifier_with(&issuer, |config| {
        config.public_url = Some("https://gw.example/scouting/".into());
        config.scopes_supported = vec!["players:write".into()];
    })
    .await;
    let named =
        r#"resource_metadata="https://gw.example/.well-known/oauth-protected-resource/scouting""#;
    let (poem, axum) = serve_both(verifier).await;

    for base in [&poem, &axum] {
        let response = send(&format!("{base}{WELL_KNOWN_PATH}"), false, None).await;
        assert_eq!(response.status(), 200, "{base}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let document: Value = response.json().await.unwrap();
        assert_eq!(
            document["resource"], "https://gw.example/scouting",
            "{base}"
        );
        assert_eq!(document["authorization_servers"], json!([issuer.url()]));
        assert_eq!(document["scopes_supported"], json!(["players:write"]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
        assert_eq!(document["dpop_bound_access_tokens_required"], false);
        assert!(
            document["dpop_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("ES256"))
        );

        let write = format!("{base}/write");
        let missing = send(&write, true, None).await;
        assert_eq!(missing.status(), 401);
        assert_eq!(
            challenge(&missing).unwrap(),
            format!(r#"Bearer realm="players-api", {named}"#),
            "{base}"
        );
        let expired = send(&write, true, Some(&valid(&issuer).expired().mint())).await;
        assert_eq!(expired.status(), 401);
        assert_eq!(
            challenge(&expired).unwrap(),
            format!(
                r#"Bearer realm="players-api", error="invalid_token", error_description="token has expired", {named}"#
            ),
            "{base}"
        );
        let reader = send(
            &write,
            true,
            Some(&valid(&issuer).scope("players:read").mint()),
        )
        .await;
        assert_eq!(reader.status(), 403);
        assert_eq!(
            challenge(&reader).unwrap(),
            format!(
                r#"Bearer realm="players-api", error="insufficient_scope", scope="players:write", {named}"#
            ),
            "{base}"
        );
        let ok = send(&write, true, Some(&valid(&issuer).mint())).await;
        assert_eq!(ok.status(), 200, "{base}");
    }

    let guarded = format!("{axum}/guarded");
    let missing = send(&guarded, true, None).await;
    assert_eq!(
        challenge(&missing).unwrap(),
        format!(r#"Bearer realm="players-api", {named}"#)
    );
    let reader = send(
        &guarded,
        true,
        Some(&valid(&issuer).scope("players:read").mint()),
    )
    .await;
    assert_eq!(reader.status(), 403);
    assert!(challenge(&reader).unwrap().ends_with(&format!(", {named}")));
    assert_eq!(
        send(&guarded, true, Some(&valid(&issuer).mint()))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn without_a_public_url_the_document_names_the_host_and_challenges_name_no_document() {
    let issuer = support::issuer().await;
    let (poem, axum) = serve_both(support::verifier(&issuer).await).await;

    for base in [&poem, &axum] {
        let response = send(&format!("{base}{WELL_KNOWN_PATH}"), false, None).await;
        assert_eq!(response.status(), 200, "{base}");
        // Rebuilt from the request's Host: no shared cache may keep it.
        assert_eq!(response.headers()["cache-control"], "no-store");
        let document: Value = response.json().await.unwrap();
        assert_eq!(document["resource"], base.as_str());
        assert!(document.get("scopes_supported").is_none(), "{document}");

        let missing = send(&format!("{base}/write"), true, None).await;
        assert_eq!(
            challenge(&missing).as_deref(),
            Some(r#"Bearer realm="players-api""#)
        );
    }
}

#[tokio::test]
async fn the_poem_operation_is_in_the_openapi_document() {
    let spec: Value = serde_json::from_str(
        &OpenApiService::new((WriteApi, ProtectedResourceApi), "test", "1").spec(),
    )
    .unwrap();
    let operation = &spec["paths"][WELL_KNOWN_PATH]["get"];
    assert_eq!(operation["operationId"], "protectedResourceMetadata");
    let schema = &operation["responses"]["200"]["content"]["application/json; charset=utf-8"]["schema"]
        ["$ref"];
    assert_eq!(schema, "#/components/schemas/ProtectedResourceMetadata");
    let fields = &spec["components"]["schemas"]["ProtectedResourceMetadata"]["properties"];
    for field in [
        "resource",
        "authorization_servers",
        "scopes_supported",
        "bearer_methods_supported",
        "dpop_signing_alg_values_supported",
        "dpop_bound_access_tokens_required",
    ] {
        assert!(fields.get(field).is_some(), "{field}");
    }
}
