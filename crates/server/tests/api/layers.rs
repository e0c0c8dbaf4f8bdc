//! The `/api` layers skip work a request does not need (a GET without a body is not buffered);
//! these check that a request that does carry a body, whatever its method, still gets the body
//! rules: 408 when it does not arrive in time, 413 when it is too large.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{Backend, spawn_app, spawn_app_with};

/// Long enough for any healthy answer on a loaded CI machine; a hang fails instead of blocking.
const GUARD: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_get_whose_body_never_arrives_answers_408() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.body_timeout = 1).await;
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    // A body is announced and never sent: only the body timeout can end this request.
    let head = "GET /api/jwt/me HTTP/1.1\r\nHost: lab\r\nContent-Length: 10\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut received))
        .await
        .expect("the server answers and closes")
        .ok();
    let response = String::from_utf8_lossy(&received).into_owned();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["reason"], "request_timeout", "{response}");
    app.stop().await;
}

#[tokio::test]
async fn a_get_with_a_body_over_the_limit_answers_413() {
    let app = spawn_app(Backend::Sqlite).await;
    let too_large = vec![b'a'; tokenlab_server::serve::MAX_BODY_BYTES + 1];
    let response = app.client.get(app.url("/api/jwt/me")).body(too_large).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn a_get_without_a_body_goes_straight_to_the_handler() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.body_timeout = 1).await;
    let response = app.client.get(app.url("/api/jwt/me")).send().await.unwrap();
    // The handler's own answer (no token), not a body rule's.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "not_logged_in", "{body}");
    app.stop().await;
}
