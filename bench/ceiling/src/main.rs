//! The ceiling leg of `make bench`: the least a poem server can do to answer the token request
//! the issuance leg sends, on the same machine, in the same run.
//!
//! `POST /auth/token` with `Authorization: Basic …` and the form body
//! `grant_type=client_credentials&scope=players:write`: it decodes the Basic credentials (form
//! decoding as RFC 6749 §2.3.1 asks), parses the same form fields the auth-server parses,
//! compares the client's id and secret with the one it was given, and signs the claims the
//! auth-server signs (`iss`, `sub`, `aud`, `client_id`, `scope`, `iat`, `nbf`, `exp`, `jti`;
//! header `typ: at+jwt`, `alg`, `kid`) with the same key type (ES256 through josekit on
//! OpenSSL, a signer built once from the JWK), then answers the RFC 6749 §5.1 JSON with
//! `Cache-Control: no-store`. Nothing else: no database, no secret hashing, no middleware, no
//! metrics, no logging. Whatever the auth-server spends beyond this is the cost of being a
//! service rather than the cost of HTTP and signing.
//!
//! Same runtime as the auth-server (`#[tokio::main]`, one worker per core) and the same
//! allocator (the system's): if the auth-server changes allocator, change it here too, or the
//! ratio measures the allocator.
//!
//! Environment: `CEILING_BIND` (default `127.0.0.1:9200`; loopback only), `CEILING_CLIENT_ID`,
//! `CEILING_CLIENT_SECRET` (required), `CEILING_AUDIENCE` (`players-api`), `CEILING_SCOPE`
//! (`players:write`), `CEILING_TTL_SECS` (3600). `GET /health` answers 200 once it listens;
//! `GET /jwks` gives the public key, so the bench can check one token's signature before the
//! load (neither is on the measured path).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsHeader, JwsSigner};
use poem::http::{StatusCode, header};
use poem::listener::TcpListener;
use poem::web::{Data, Form};
use poem::{EndpointExt, Request, Response, Route, Server, get, handler, post};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every request needs, built once.
struct Ceiling {
    signer: Box<dyn JwsSigner>,
    kid: String,
    public_jwk: String,
    issuer: String,
    audience: String,
    scope: String,
    client_id: String,
    client_secret: String,
    ttl_secs: i64,
}

/// The token request's fields, as the auth-server's `TokenRequestBody` has them.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed as the auth-server parses them; only some are used here
struct TokenForm {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    audience: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

/// RFC 9068 claims, in the auth-server's order, times in whole seconds.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(format!(r#"{{"error":"{error}"}}"#));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(r#"Basic realm="bench-ceiling""#),
        );
    }
    response
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[handler]
fn token(request: &Request, Form(form): Form<TokenForm>, ceiling: Data<&Arc<Ceiling>>) -> Response {
    let ceiling = *ceiling;
    let Some((id, secret)) = basic_credentials(request) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let known = id.as_bytes().ct_eq(ceiling.client_id.as_bytes())
        & secret.as_bytes().ct_eq(ceiling.client_secret.as_bytes());
    if !bool::from(known) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.grant_type != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if form
        .scope
        .as_deref()
        .is_some_and(|s| !s.split(' ').all(|one| one == ceiling.scope))
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let now = now_secs();
    let claims = Claims {
        iss: &ceiling.issuer,
        sub: &id,
        aud: &ceiling.audience,
        client_id: &id,
        scope: &ceiling.scope,
        iat: now,
        nbf: now,
        exp: now + ceiling.ttl_secs,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let mut jws_header = JwsHeader::new();
    jws_header.set_token_type("at+jwt");
    jws_header.set_key_id(&ceiling.kid);
    let signed = serde_json::to_vec(&claims).ok().and_then(|payload| {
        josekit::jws::serialize_compact(&payload, &jws_header, ceiling.signer.as_ref()).ok()
    });
    let Some(access_token) = signed else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let body = serde_json::to_vec(&TokenAnswer {
        access_token,
        token_type: "Bearer",
        expires_in: ceiling.ttl_secs,
        scope: &ceiling.scope,
    })
    .unwrap_or_default();
    Response::builder()
        .content_type("application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::PRAGMA, "no-cache")
        .body(body)
}

#[handler]
fn health() -> &'static str {
    "ok"
}

#[handler]
fn jwks(ceiling: Data<&Arc<Ceiling>>) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(format!(r#"{{"keys":[{}]}}"#, ceiling.public_jwk))
}

/// RFC 7638 thumbprint, as the auth-server names its keys (so the header has the same size).
fn thumbprint(public: &Jwk) -> Option<String> {
    let member = |name: &str| public.parameter(name).and_then(|v| v.as_str());
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        member("crv")?,
        member("x")?,
        member("y")?
    );
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn build() -> Result<(SocketAddr, Ceiling), String> {
    let bind: SocketAddr = env_or("CEILING_BIND", "127.0.0.1:9200")
        .parse()
        .map_err(|e| format!("CEILING_BIND: {e}"))?;
    if !bind.ip().is_loopback() {
        return Err("CEILING_BIND must be a loopback address".into());
    }
    let client_secret = std::env::var("CEILING_CLIENT_SECRET")
        .map_err(|_| "CEILING_CLIENT_SECRET is required".to_owned())?;
    let ttl_secs = env_or("CEILING_TTL_SECS", "3600")
        .parse()
        .map_err(|e| format!("CEILING_TTL_SECS: {e}"))?;
    let pair = ES256
        .generate_key_pair()
        .map_err(|e| format!("key generation: {e}"))?;
    let mut private = pair.to_jwk_key_pair();
    let mut public = private
        .to_public_key()
        .map_err(|e| format!("public key: {e}"))?;
    let kid = thumbprint(&public).ok_or("the generated key has no thumbprint")?;
    for jwk in [&mut private, &mut public] {
        jwk.set_key_id(&kid);
        jwk.set_algorithm("ES256");
        jwk.set_key_use("sig");
    }
    let signer = ES256
        .signer_from_jwk(&private)
        .map_err(|e| format!("signer: {e}"))?;
    Ok((
        bind,
        Ceiling {
            signer: Box::new(signer),
            kid,
            public_jwk: public.to_string(),
            issuer: format!("http://{bind}"),
            audience: env_or("CEILING_AUDIENCE", "players-api"),
            scope: env_or("CEILING_SCOPE", "players:write"),
            client_id: env_or("CEILING_CLIENT_ID", "bench-client"),
            client_secret,
            ttl_secs,
        },
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (bind, ceiling) = match build() {
        Ok(built) => built,
        Err(err) => {
            eprintln!("bench-ceiling: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = Route::new()
        .at("/auth/token", post(token))
        .at("/health", get(health))
        .at("/jwks", get(jwks))
        .data(Arc::new(ceiling));
    println!("bench-ceiling listening on http://{bind}");
    match Server::new(TcpListener::bind(bind)).run(app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-ceiling: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
