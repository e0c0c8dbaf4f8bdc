use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Backend, START, assert_refused, production, spawn_app, spawn_app_with};

fn now_of(body: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(body["now"].as_str().unwrap(), &Rfc3339).unwrap()
}

backend_test!(the_demo_clock_moves_forward_and_resets);
async fn the_demo_clock_moves_forward_and_resets(backend: Backend) {
    let app = spawn_app(backend).await;
    let start: Value = app.get("/api/demo/clock").await.json().await.unwrap();
    assert_eq!(start["offset_seconds"], 0);
    assert_eq!(now_of(&start), START, "the server tells the time of the test's clock");

    let response = app.post_json("/api/demo/clock", &json!({"advance_seconds": 31 * 60})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let moved: Value = response.json().await.unwrap();
    assert_eq!(moved["offset_seconds"], 31 * 60);
    let jump = (now_of(&moved) - now_of(&start)).whole_seconds();
    assert_eq!(jump, 31 * 60, "jumped {jump}s");

    let again: Value = app
        .post_json("/api/demo/clock", &json!({"advance_seconds": 61 * 86_400}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["offset_seconds"], 31 * 60 + 61 * 86_400);

    let reset: Value =
        app.post_json("/api/demo/clock", &json!({"reset": true})).await.json().await.unwrap();
    assert_eq!(reset["offset_seconds"], 0);
    assert_eq!(now_of(&reset), now_of(&start));

    // The demo clock is an offset on the base clock, which the test moves as time passing.
    app.clock.advance(time::Duration::minutes(5));
    let later: Value = app.get("/api/demo/clock").await.json().await.unwrap();
    assert_eq!(later["offset_seconds"], 0);
    assert_eq!(now_of(&later), START + time::Duration::minutes(5));
    app.stop().await;
}

backend_test!(the_demo_clock_refuses_bad_moves);
async fn the_demo_clock_refuses_bad_moves(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (json!({"advance_seconds": 0}), "invalid_clock_advance"),
        (json!({"advance_seconds": -60}), "invalid_clock_advance"),
        (json!({"advance_seconds": 400 * 86_400}), "invalid_clock_advance"),
        (json!({"reset": false}), "invalid_body"),
        (json!({"advance_seconds": 60, "reset": true}), "invalid_body"),
        (json!({}), "invalid_body"),
        (json!({"advance_seconds": "60"}), "invalid_body"),
    ];
    for (body, reason) in cases {
        let response = app.post_json("/api/demo/clock", &body).await;
        assert_refused(response, StatusCode::UNPROCESSABLE_ENTITY, reason).await;
    }
    let unchanged: Value = app.get("/api/demo/clock").await.json().await.unwrap();
    assert_eq!(unchanged["offset_seconds"], 0);
    app.stop().await;
}

backend_test!(the_demo_clock_does_not_exist_in_production);
async fn the_demo_clock_does_not_exist_in_production(backend: Backend) {
    let app = spawn_app_with(backend, production).await;
    assert_refused(app.get("/api/demo/clock").await, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.post_json("/api/demo/clock", &json!({"advance_seconds": 60})).await;
    assert_refused(response, StatusCode::NOT_FOUND, "not_found").await;
    // Nor is the demo account seeded.
    assert_eq!(app.register("alice", "a fresh password").await.status(), StatusCode::CREATED);
    app.stop().await;
}
