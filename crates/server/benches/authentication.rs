//! What recognising a caller costs, per request, for each way of doing it (the article's claims C1
//! and C3): checking the name and password every time, looking up a session id, checking a device
//! token against its session, and verifying a signed access token.
//!
//! Each request goes through the real server over loopback HTTP, on a fresh SQLite database, so the
//! numbers include routing, the session layer and the database, as a client sees them. Before the
//! timings, one request of each kind reports how many database statements it ran
//! (`X-Tokenlab-Db-Queries`).
// A benchmark reports on stdout, and fails loudly if the lab it measures does not start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use tokenlab_server::{Application, Settings, clock::SystemClock};

const USERNAME: &str = "alice";
const PASSWORD: &str = "wonderland-demo";

struct Lab {
    base: String,
    _db: tempfile::TempDir,
}

async fn start() -> Lab {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("bench.db").display());
    let app = Application::build(Settings::for_tests(url), Arc::new(SystemClock)).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(async move { app.run_until(std::future::pending()).await.unwrap() });
    Lab { base, _db: db }
}

async fn send(request: RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let statements = response.headers()["x-tokenlab-db-queries"].to_str().unwrap().to_owned();
    (status, statements)
}

fn authentication(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (lab, session, device, device_token, bearer) = runtime.block_on(async {
        let lab = start().await;
        let session = Client::builder().cookie_store(true).build().unwrap();
        let login = json!({ "username": USERNAME, "password": PASSWORD });
        session.post(format!("{}/api/session/login", lab.base)).json(&login).send().await.unwrap();
        let device = Client::builder().cookie_store(true).build().unwrap();
        let device_login: Value = device
            .post(format!("{}/api/device/login", lab.base))
            .json(&json!({ "username": USERNAME, "password": PASSWORD, "device_id": "bench-device", "mode": "hardened" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The session stays live throughout, so the secret is never rotated under the benchmark.
        let device_token = device_login["device_token"].as_str().unwrap().to_owned();
        let tokens: Value = Client::new()
            .post(format!("{}/api/oauth/token", lab.base))
            .json(&json!({ "grant_type": "password", "username": USERNAME, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = tokens["access_token"].as_str().unwrap().to_owned();
        (lab, session, device, device_token, bearer)
    });

    // One client without cookies for the password and the bearer requests, kept across
    // iterations like the others: building a client per request would be timed as well.
    let plain = Client::new();
    let password_login = || {
        plain
            .post(format!("{}/api/session/login", lab.base))
            .json(&json!({ "username": USERNAME, "password": PASSWORD }))
    };
    let session_me = || session.get(format!("{}/api/session/me", lab.base));
    let device_me = || {
        device
            .get(format!("{}/api/device/me", lab.base))
            .header("x-device-id", "bench-device")
            .header("x-device-token", &device_token)
    };
    let bearer_me = || plain.get(format!("{}/api/jwt/me", lab.base)).bearer_auth(&bearer);

    println!("database statements per request (C3):");
    for (name, request) in [
        ("name + password", password_login()),
        ("session id", session_me()),
        ("device token", device_me()),
        ("access token", bearer_me()),
    ] {
        let (status, statements) = runtime.block_on(send(request));
        assert_eq!(status, 200, "{name}");
        println!("  {name:<16} {statements}");
    }

    let mut group = c.benchmark_group("recognise a caller");
    // argon2id at OWASP's minimum takes tens of milliseconds by design: fewer samples, more time.
    group.sample_size(20).measurement_time(std::time::Duration::from_secs(10));
    group.bench_function("name + password (argon2id) every request", |b| {
        b.to_async(&runtime).iter(|| send(password_login()))
    });
    group.sample_size(100).measurement_time(std::time::Duration::from_secs(5));
    group.bench_function("session id lookup", |b| b.to_async(&runtime).iter(|| send(session_me())));
    group.bench_function("device token vs session copy", |b| {
        b.to_async(&runtime).iter(|| send(device_me()))
    });
    group
        .bench_function("signed access token", |b| b.to_async(&runtime).iter(|| send(bearer_me())));
    group.finish();
}

criterion_group!(benches, authentication);
criterion_main!(benches);
