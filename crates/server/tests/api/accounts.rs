use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_refused, spawn_app};

backend_test!(register_returns_the_account);
async fn register_returns_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.register("bob", "correct horse battery").await;
    assert_eq!(response.status(), StatusCode::CREATED, "{backend:?}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "bob");
    assert!(body["id"].as_i64().is_some(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "nothing but id and username: {body}");
    app.stop().await;
}

backend_test!(duplicate_username_is_409);
async fn duplicate_username_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.register("carol", "first password").await.status(), StatusCode::CREATED);
    assert_refused(
        app.register("carol", "another password").await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    // The demo account is seeded at start, so its name is taken too.
    assert_refused(
        app.register("alice", "whatever123").await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    app.stop().await;
}

backend_test!(concurrent_registrations_of_one_name_create_one_account);
async fn concurrent_registrations_of_one_name_create_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let attempts = (0..8).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/api/accounts"));
        async move {
            client
                .post(url)
                .json(&json!({"username": "racer", "password": format!("password number {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_join_all(attempts).await;
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 7), "{backend:?}: {statuses:?}");
    app.stop().await;
}

backend_test!(account_rules_are_enforced_with_reasons);
async fn account_rules_are_enforced_with_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        ("ab", "long enough password", "invalid_username"),
        ("Bob", "long enough password", "invalid_username"),
        ("bob smith", "long enough password", "invalid_username"),
        ("dave", "short", "weak_password"),
        ("dave", "1234567", "weak_password"),
        ("dave", &"x".repeat(129), "weak_password"),
    ];
    for (username, password, reason) in cases {
        let response = app.register(username, password).await;
        assert_refused(response, StatusCode::UNPROCESSABLE_ENTITY, reason).await;
    }
    app.stop().await;
}

backend_test!(passwords_are_used_exactly_as_sent);
async fn passwords_are_used_exactly_as_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    // Seven visible characters plus a space: eight characters, so accepted only if the space is
    // kept rather than trimmed.
    assert_eq!(app.register("spacey", "1234567 ").await.status(), StatusCode::CREATED);
    // 128 characters of 2-byte UTF-8: counted as characters, not bytes.
    assert_eq!(app.register("unicode", &"é".repeat(128)).await.status(), StatusCode::CREATED);
    app.stop().await;
}

backend_test!(malformed_requests_are_4xx_with_a_reason_never_500);
async fn malformed_requests_are_4xx_with_a_reason_never_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.url("/api/accounts");
    let cases: Vec<(Option<&str>, &str, StatusCode, &str)> = vec![
        (Some("application/json"), "{not json", StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), "", StatusCode::BAD_REQUEST, "invalid_json"),
        (
            Some("application/json"),
            r#"{"username": "erin"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("application/json"),
            r#"{"username": 7, "password": "long enough"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("application/json"),
            r#"{"username": "erin", "password": "long enough", "admin": true}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (Some("application/json"), "[]", StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (
            Some("text/plain"),
            r#"{"username": "erin", "password": "long enough"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            None,
            r#"{"username": "erin", "password": "long enough"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, status, reason) in cases {
        let mut request = app.client.post(&url).body(body.to_owned());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_refused(response, status, reason).await;
    }
    app.stop().await;
}

/// `futures::future::join_all` without the dependency: spawn each and collect in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
