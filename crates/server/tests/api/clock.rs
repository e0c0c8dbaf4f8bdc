use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{assert_refused, backends, production, spawn_app, spawn_app_with};

fn now_of(body: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(body["now"].as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test]
async fn the_demo_clock_moves_forward_and_resets() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let start: Value = app.get("/api/demo/clock").await.json().await.unwrap();
        assert_eq!(start["offset_seconds"], 0);

        let response = app.post_json("/api/demo/clock", &json!({"advance_seconds": 31 * 60})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let moved: Value = response.json().await.unwrap();
        assert_eq!(moved["offset_seconds"], 31 * 60);
        let jump = (now_of(&moved) - now_of(&start)).whole_seconds();
        // The real clock also ran for the length of one request.
        assert!((31 * 60..31 * 60 + 5).contains(&jump), "jumped {jump}s");

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
        assert!((now_of(&reset) - now_of(&start)).whole_seconds() < 5);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_demo_clock_refuses_bad_moves() {
    for backend in backends() {
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
}

#[tokio::test]
async fn the_demo_clock_does_not_exist_in_production() {
    for backend in backends() {
        let app = spawn_app_with(backend, production).await;
        assert_refused(app.get("/api/demo/clock").await, StatusCode::NOT_FOUND, "not_found").await;
        let response = app.post_json("/api/demo/clock", &json!({"advance_seconds": 60})).await;
        assert_refused(response, StatusCode::NOT_FOUND, "not_found").await;
        // Nor is the demo account seeded.
        assert_eq!(app.register("alice", "a fresh password").await.status(), StatusCode::CREATED);
        app.stop().await;
    }
}
