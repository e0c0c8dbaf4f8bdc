//! Several instances on one database behave as one lab: each says who answered, and the demo clock
//! is one clock.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_response_names_the_instance_that_answered() {
    let named = spawn_app_with(Backend::Sqlite, |s| s.instance = Some("A".into())).await;
    // An API answer, a refusal, a page, the health check and a path nobody serves alike.
    for path in ["/api/demo/clock", "/api/session/me", "/", "/livez", "/no-such-page"] {
        let response = named.get(path).await;
        assert_eq!(
            response.headers().get("x-tokenlab-instance").and_then(|v| v.to_str().ok()),
            Some("A"),
            "{path} ({})",
            response.status()
        );
    }
    named.stop().await;

    // Unnamed: the host name and the port, which tells two local instances apart.
    let unnamed = spawn_app(Backend::Sqlite).await;
    let port = unnamed.base.rsplit(':').next().unwrap().to_owned();
    let response = unnamed.get("/livez").await;
    let name = response.headers()["x-tokenlab-instance"].to_str().unwrap().to_owned();
    assert!(name.ends_with(&format!(":{port}")) && name.len() > port.len() + 1, "{name}");
    unnamed.stop().await;
}

async fn offset(app: &crate::helpers::TestApp) -> i64 {
    let clock: Value = app.get("/api/demo/clock").await.json().await.unwrap();
    clock["offset_seconds"].as_i64().unwrap()
}

/// How long until `app`'s clock shows `expected`, polled every 20 ms; panics after 5 s.
async fn until_offset(app: &crate::helpers::TestApp, expected: i64, since: Instant) -> Duration {
    loop {
        if offset(app).await == expected {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(5), "the clock never showed {expected}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

backend_test!(the_demo_clock_moved_on_one_instance_moves_on_every_instance_within_a_second);
async fn the_demo_clock_moved_on_one_instance_moves_on_every_instance_within_a_second(
    backend: Backend,
) {
    let a = spawn_app(backend).await;
    let b = a.second_instance().await;

    let moved = Instant::now();
    a.advance_clock(31 * 60).await;
    assert_eq!(offset(&a).await, 31 * 60, "the instance that moved it, at once");
    let seen = until_offset(&b, 31 * 60, moved).await;
    eprintln!("{backend:?}: B saw A's +31 min after {seen:?}");
    assert!(seen < Duration::from_secs(1), "{backend:?}: {seen:?}");

    // An instance started later starts where the others stand.
    let c = a.second_instance().await;
    assert_eq!(offset(&c).await, 31 * 60);

    // Advances on two instances at once all count: 20 steps of a minute, half on each.
    let step = json!({"advance_seconds": 60});
    let steps = (0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post_json("/api/demo/clock", &step)
    });
    for response in futures::future::join_all(steps).await {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let expected = 31 * 60 + 20 * 60;
    assert!(until_offset(&a, expected, Instant::now()).await < Duration::from_secs(1));
    assert!(until_offset(&b, expected, Instant::now()).await < Duration::from_secs(1));

    // A reset on one instance, and "reset demo" on another, return every clock to the real time.
    let reset = Instant::now();
    let response = b.post_json("/api/demo/clock", &json!({"reset": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(until_offset(&a, 0, reset).await < Duration::from_secs(1));
    a.advance_clock(3600).await;
    assert!(until_offset(&c, 3600, Instant::now()).await < Duration::from_secs(1));
    let response = c.post_json("/api/demo/reset", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let reset = Instant::now();
    assert!(until_offset(&a, 0, reset).await < Duration::from_secs(1));
    assert!(until_offset(&b, 0, reset).await < Duration::from_secs(1));

    c.stop().await;
    b.stop().await;
    a.stop().await;
}
