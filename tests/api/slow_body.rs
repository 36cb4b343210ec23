//! Issue 11, finding 10: a slow body at the resource API. The bearer token is checked before the
//! body is read, so a caller without a valid token cannot make the API wait for a body; a caller
//! with one gets 408 once the body has not arrived within the deadline (10 s), however steadily
//! it trickles in (poem's idle timeout would reset on every byte).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::players::services;

/// Sends the head of a player POST that announces a body of 200 bytes and then sends one
/// byte every `every` until the server answers; returns the answer and how long it took.
async fn post_trickling(address: &str, token: Option<&str>, every: Duration) -> (String, Duration) {
    let address = address.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address).await.unwrap();
    let authorization =
        token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST /players HTTP/1.1\r\nHost: {address}\r\n{authorization}\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{"
    );
    let started = Instant::now();
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server must answer, not wait for ever"
        );
        match tokio::time::timeout(every, socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            // Nothing yet: one more byte of body (a space, still valid JSON whitespace).
            Err(_) => {
                if socket.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_slow_body_without_a_valid_token_is_401_at_once() {
    let s = services().await;

    let (answer, took) = post_trickling(&s.api.address, None, Duration::from_millis(200)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");

    let (answer, took) = post_trickling(
        &s.api.address,
        Some("not-a-token"),
        Duration::from_millis(200),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
}

#[tokio::test]
async fn a_trickling_body_with_a_valid_token_is_408_within_the_deadline() {
    let s = services().await;
    let token = s.auth.access_token().await;

    let (answer, took) =
        post_trickling(&s.api.address, Some(&token), Duration::from_millis(500)).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("application/problem+json") || answer.contains("application/json"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "answered after {took:?}, the deadline is 10 s"
    );
}
