//! A loopback HTTP server with fixed answers (documents and redirects), for what the test
//! issuer will not do: redirect, or publish metadata that points elsewhere. Counts what it
//! was asked.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

/// What the server answers on one path.
#[derive(Clone)]
pub enum Answer {
    /// 200 with a JSON body.
    Json(String),
    /// 302 to this location.
    Redirect(String),
}

pub struct FixedServer {
    pub url: String,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FixedServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (routes_in, hits_in) = (Arc::clone(&routes), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (routes, hits) = (Arc::clone(&routes_in), Arc::clone(&hits_in));
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<_>| {
                        let path = request.uri().path().to_owned();
                        hits.lock().unwrap().push(path.clone());
                        let answer = routes.lock().unwrap().get(&path).cloned();
                        async move { Ok::<_, Infallible>(respond(answer)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            routes,
            hits,
            task,
        }
    }

    pub fn answer(&self, path: &str, answer: Answer) {
        self.routes.lock().unwrap().insert(path.into(), answer);
    }

    /// How many requests asked for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|hit| *hit == path)
            .count()
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(answer: Option<Answer>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    match answer {
        Some(Answer::Json(body)) => {
            *response.body_mut() = Full::new(Bytes::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
        }
        Some(Answer::Redirect(location)) => {
            *response.status_mut() = StatusCode::FOUND;
            response
                .headers_mut()
                .insert(header::LOCATION, location.parse().unwrap());
        }
        None => *response.status_mut() = StatusCode::NOT_FOUND,
    }
    response
}
