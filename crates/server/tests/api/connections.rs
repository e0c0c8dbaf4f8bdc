//! Connection hygiene, attacked over raw TCP the way a slow client would: headers never finished,
//! a body dripped forever, a handler held past its deadline, more connections than the cap.
//! Each test shortens its limit to a second; nothing here sleeps to wait for the server, it
//! reads until the server answers or closes (a guard timeout only turns a hang into a failure).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, TestUser, spawn_app_with};

/// Long enough for any healthy answer on a loaded CI machine; a hang fails instead of blocking.
const GUARD: Duration = Duration::from_secs(20);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap()
}

/// Well under the default `--header-timeout` of 10 s: a close this soon is the test's 1 s limit at
/// work, not the default.
const SOON: Duration = Duration::from_secs(5);

/// Reads everything until the server closes the connection, which must happen `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one response with a `Content-Length` body from a connection that stays open.
async fn read_one_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(GUARD, stream.read(&mut chunk))
            .await
            .expect("the server answers")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {text}");
        received.extend_from_slice(&chunk[..n]);
    }
}

fn body_of(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {response}"))
}

#[tokio::test]
async fn headers_that_never_finish_lose_the_connection() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.header_timeout = 1).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /livez HTTP/1.1\r\nHost: lab\r\nX-Slow: ").await.unwrap();
    let answered = read_until_closed(&mut stream, SOON).await;
    assert!(!answered.contains("200 OK"), "the half request was not served: {answered}");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_too() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.header_timeout = 1).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /livez HTTP/1.1\r\nHost: lab\r\n\r\n").await.unwrap();
    let first = read_one_response(&mut stream).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Waiting for the next request's headers is waiting for headers: the slot is given back.
    let after = read_until_closed(&mut stream, SOON).await;
    assert!(after.is_empty(), "nothing more was sent: {after}");
    app.stop().await;
}

#[tokio::test]
async fn a_dripped_body_answers_408_however_steady_the_drip() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.body_timeout = 1).await;
    let mut stream = connect(&app).await;
    let head = "POST /api/session/login HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n\
                Content-Length: 4096\r\n\r\n{\"username\":\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 100 ms: never idle for long, never finished. The attack is the drip, so it
    // is paced by a timer; the test itself waits only for the server's answer.
    let drip = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        loop {
            every.tick().await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
    });
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, reader.read_to_end(&mut received))
        .await
        .expect("the server answers and closes")
        .ok();
    drip.abort();
    let response = String::from_utf8_lossy(&received).into_owned();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(body_of(&response)["reason"], "request_timeout", "{response}");
    app.stop().await;
}

#[tokio::test]
async fn a_handler_past_its_deadline_answers_503_with_a_reason() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.handler_timeout = 1).await;
    let phone = app.device_login(&TestUser::alice(), "slow-phone", "hardened").await;
    // The demo holds this request 5 s after authenticating it; the deadline is 1 s.
    let held = phone
        .credential
        .apply(app.client.get(app.url("/api/device/me")))
        .header("x-demo-delay-ms", "5000")
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = held.json().await.unwrap();
    assert_eq!(body["reason"], "deadline_exceeded", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_ends() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.max_connections = 2).await;
    let request = b"GET /livez HTTP/1.1\r\nHost: lab\r\n\r\n";
    // Two kept-alive connections, each served once, so each surely holds its slot.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app).await;
        stream.write_all(request).await.unwrap();
        assert!(read_one_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut third = connect(&app).await;
    third.write_all(request).await.unwrap();
    let mut first_byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut first_byte)).await;
    assert!(early.is_err(), "a third connection was served while two held the cap");
    drop(held.remove(0));
    let answered = read_one_response(&mut third).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "served once a slot was free: {answered}");
    app.stop().await;
}
