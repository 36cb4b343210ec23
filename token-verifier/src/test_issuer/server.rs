//! The test issuer's HTTP side: hyper's HTTP/1 server on a loopback listener, three GET
//! routes, every connection ended with the issuer.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinSet};

use super::IssuerState;

pub(crate) async fn serve(listener: TcpListener, state: Arc<IssuerState>) {
    // Dropped (and so aborted) with this task when the issuer is dropped.
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %err, "test issuer: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let response = answer(&state, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that goes away mid-request is no concern of the issuer's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

fn answer(state: &IssuerState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED);
    }
    match request.uri().path() {
        "/.well-known/jwks.json" => match state.jwks() {
            Some((body, max_age)) => json(body, Some(max_age)),
            None => plain(StatusCode::SERVICE_UNAVAILABLE),
        },
        "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => {
            match state.metadata() {
                Some(body) => json(body, None),
                None => plain(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        _ => plain(StatusCode::NOT_FOUND),
    }
}

fn json(body: String, max_age: Option<u64>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(max_age) = max_age
        && let Ok(value) = format!("public, max-age={max_age}").parse()
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
