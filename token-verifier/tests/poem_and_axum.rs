//! One verifier, two frameworks: poem and axum answer every request alike (status,
//! challenge, body), because both hand the same core check the same request view.

#![cfg(all(feature = "poem", feature = "axum"))]

mod support;

use poem::{EndpointExt, handler, web::Data};
use support::valid;
use token_verifier::{
    TokenVerifier,
    axum::{Scope, Scoped},
    openapi::authenticate,
};

struct WritePlayers;
impl Scope for WritePlayers {
    const NAME: &'static str = "players:write";
}

#[handler]
async fn poem_write(
    request: &poem::Request,
    Data(verifier): Data<&TokenVerifier>,
) -> poem::Result<String> {
    let claims = authenticate(verifier, request).await?;
    if !claims.has_scope(WritePlayers::NAME) {
        return Err(verifier
            .insufficient_scope(&claims, WritePlayers::NAME)
            .into());
    }
    Ok(claims.subject)
}

async fn axum_write(caller: Scoped<WritePlayers>) -> String {
    caller.subject.clone()
}

async fn serve_both(verifier: TokenVerifier) -> (String, String) {
    let poem_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let poem_address = format!("http://{}", poem_listener.local_addr().unwrap());
    drop(poem_listener);
    let app = poem::Route::new()
        .at("/write", poem::post(poem_write))
        .data(verifier.clone());
    let bind = poem_address.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        poem::Server::new(poem::listener::TcpListener::bind(bind))
            .run(app)
            .await
    });

    let axum_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let axum_address = format!("http://{}", axum_listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/write", axum::routing::post(axum_write))
        .with_state(verifier);
    tokio::spawn(async move { axum::serve(axum_listener, app).await });

    (poem_address, axum_address)
}

/// Status, `WWW-Authenticate` and body of a POST with `token`, retried while the server
/// is still starting.
async fn answer(address: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    for _ in 0..100 {
        let mut request = reqwest::Client::new().post(format!("{address}/write"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|value| value.to_str().unwrap().to_owned());
            return (
                response.status().as_u16(),
                challenge,
                response.text().await.unwrap(),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{address} did not answer");
}

#[tokio::test]
async fn poem_and_axum_answer_every_token_alike() {
    let issuer = support::issuer().await;
    let (poem, axum) = serve_both(support::verifier(&issuer).await).await;
    let tokens = [
        None,
        Some("garbage".to_owned()),
        Some(valid(&issuer).mint()),
        Some(valid(&issuer).expired().mint()),
        Some(valid(&issuer).audience("billing-api").mint()),
        Some(valid(&issuer).scope("players:read").mint()),
        Some(valid(&issuer).kid("made-up").mint()),
    ];

    for token in &tokens {
        let from_poem = answer(&poem, token.as_deref()).await;
        let from_axum = answer(&axum, token.as_deref()).await;
        assert_eq!(from_poem, from_axum, "{token:?}");
    }
    assert_eq!(answer(&axum, tokens[2].as_deref()).await.0, 200);
}
