//! Several instances on one database behave as one lab: each says who answered, and the demo clock
//! is one clock.

use std::time::Instant;

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

backend_test!(the_demo_clock_moved_on_one_instance_is_moved_on_every_instance_when_it_answers);
async fn the_demo_clock_moved_on_one_instance_is_moved_on_every_instance_when_it_answers(
    backend: Backend,
) {
    let a = spawn_app(backend).await;
    let b = a.second_instance().await;

    // Behind a load balancer the next request may go anywhere: once the move is answered, every
    // instance must already judge by the moved clock.
    let moved = Instant::now();
    a.advance_clock(31 * 60).await;
    eprintln!("{backend:?}: moving the clock was answered after {:?}", moved.elapsed());
    assert_eq!(offset(&a).await, 31 * 60, "the instance that moved it");
    assert_eq!(offset(&b).await, 31 * 60, "{backend:?}: the other one, at once");

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
    for app in [&a, &b, &c] {
        assert_eq!(offset(app).await, expected);
    }

    // A reset on one instance, and "reset demo" on another, return every clock to the real time.
    let response = b.post_json("/api/demo/clock", &json!({"reset": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(offset(&a).await, 0);
    a.advance_clock(3600).await;
    assert_eq!(offset(&c).await, 3600);
    let response = c.post_json("/api/demo/reset", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!((offset(&a).await, offset(&b).await), (0, 0));

    c.stop().await;
    b.stop().await;
    a.stop().await;
}
