//! What every endpoint shares: the OpenAPI document, error shape, request ids, health, the page.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use tokenlab_server::app::StartError;
use tokenlab_server::config::{ConfigError, Profile};
use tokenlab_server::{Application, Settings};

use crate::helpers::{
    Backend, TestUser, assert_refused, production, spawn_app, spawn_app_with, test_clock,
};

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

fn ops(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect()
}

/// Every route of every profile. A new endpoint must be added here, and to the document (which
/// `utoipa_axum::routes!` does by construction).
const EVERY_ROUTE: &[(&str, &str)] = &[
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/healthz"),
    ("POST", "/api/accounts"),
    ("POST", "/api/accounts/password"),
    ("POST", "/api/session/login"),
    ("GET", "/api/session/me"),
    ("POST", "/api/session/logout"),
    ("POST", "/api/session/dbsc/registration"),
    ("POST", "/api/session/dbsc/refresh"),
    ("GET", "/api/orders/form-token"),
    ("GET", "/api/orders"),
    ("POST", "/api/orders"),
    ("POST", "/api/device/login"),
    ("GET", "/api/device/me"),
    ("GET", "/api/device/devices"),
    ("DELETE", "/api/device/devices/{id}"),
    ("POST", "/api/device/logout"),
    ("POST", "/api/device/logout-all"),
    ("POST", "/api/oauth/token"),
    ("POST", "/api/oauth/revoke"),
    ("GET", "/api/oauth/family"),
    ("GET", "/api/jwt/me"),
    ("GET", "/api/sessions"),
    ("DELETE", "/api/sessions/{id}"),
    ("POST", "/api/sessions/revoke-all"),
    ("GET", "/.well-known/jwks.json"),
];

/// Routed in the demo profile only.
const DEMO_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/demo/clock"),
    ("POST", "/api/demo/clock"),
    ("POST", "/api/demo/keys/rotate"),
    ("POST", "/api/demo/keys/retire"),
    ("POST", "/api/demo/reset"),
    ("POST", "/api/demo/sessions/expire"),
    ("GET", "/api/demo/policy"),
    ("PUT", "/api/demo/policy"),
    ("GET", "/api/demo/inspector"),
    ("GET", "/api/demo/stateless-jwt"),
];

backend_test!(the_openapi_document_lists_every_route_and_every_listed_route_answers);
async fn the_openapi_document_lists_every_route_and_every_listed_route_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let listed = operations(&doc);
    let expected = ops(EVERY_ROUTE).into_iter().chain(ops(DEMO_ROUTES)).collect();
    assert_eq!(listed, expected);

    for (method, path) in &listed {
        let request = app.client.request(method.parse().unwrap(), app.url(path));
        let request = if method == "GET" { request } else { request.json(&serde_json::json!({})) };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        // A handler may answer 404 itself (nothing to show); the router's own 404 and 405
        // mean the route does not exist.
        let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && body.contains("no such API endpoint"));
        assert!(!unrouted, "{method} {path} is documented but answers {status}: {body}");
    }
    // Every error response is described with the shared error body.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn production_documents_no_demo_routes() {
    let app = spawn_app_with(Backend::Sqlite, production).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(operations(&doc), ops(EVERY_ROUTE));
    app.stop().await;
}

#[tokio::test]
async fn the_docs_page_is_browsable() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/api/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(html.contains("/api/openapi.json"), "{html}");
    app.stop().await;
}

backend_test!(unknown_api_routes_and_methods_answer_with_a_reason);
async fn unknown_api_routes_and_methods_answer_with_a_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    // Everything under `/api`, its root included, is the API's: its JSON and `no-store`, never
    // the site's HTML page.
    for path in ["/api/nothing-here", "/api", "/api/", "/api/session/me/more"] {
        let response = app.get(path).await;
        let cache = response.headers().get("cache-control").cloned();
        assert_eq!(cache.as_ref().and_then(|v| v.to_str().ok()), Some("no-store"), "{path}");
        assert_refused(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let delete = app.client.delete(app.url("/api/accounts")).send().await.unwrap();
    assert_refused(delete, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    app.stop().await;
}

backend_test!(health_request_ids_and_cookie_names);
async fn health_request_ids_and_cookie_names(backend: Backend) {
    let app = spawn_app(backend).await;
    for probe in ["/livez", "/readyz"] {
        let response = app.get(probe).await;
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
        assert_eq!(response.text().await.unwrap(), "ok", "{probe}");
    }
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(response.text().await.unwrap(), "ok");

    // A client's own request id is not taken as the server's (a client must not choose, forge or
    // collide the id its request is logged under); it is logged beside the server's own.
    let mine =
        app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    let ours = mine.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(ours.len(), 36, "a UUID of the server's: {ours}");

    // Cookie names (never values) are reported for the lab's timeline.
    let with_cookie = app
        .client
        .get(app.url("/healthz"))
        .header("cookie", "tl_session=secret-value; other=1")
        .send()
        .await
        .unwrap();
    let report = with_cookie.headers()["x-tokenlab-cookies"].to_str().unwrap();
    assert_eq!(report, "sent=tl_session,other");
    assert!(app.get("/healthz").await.headers().get("x-tokenlab-cookies").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_lab_page_is_server_rendered_with_its_hydration_script() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>tokenlab"), "title");
    assert!(html.contains("Request timeline"), "timeline panel");
    assert!(html.contains("/pkg/tokenlab.js"), "hydration script");
    assert!(html.contains("/pkg/tokenlab_bg.wasm"), "wasm module");
    // Not hydrated until the browser runs the wasm.
    assert!(!html.contains("data-hydrated=\"true\""));
    app.stop().await;
}

#[tokio::test]
async fn production_refuses_to_start_without_https() {
    for public_url in [None, Some("http://lab.example".to_owned())] {
        let mut settings = Settings::for_tests("sqlite::memory:");
        settings.profile = Profile::Production;
        settings.public_url = public_url.clone();
        let result = Application::build(settings, test_clock()).await;
        assert!(
            matches!(result, Err(StartError::Config(ConfigError::ProductionWithoutHttps))),
            "{public_url:?}"
        );
    }
}

backend_test!(security_headers_and_no_lab_instruments_in_production);
async fn security_headers_and_no_lab_instruments_in_production(backend: Backend) {
    let app = spawn_app_with(backend, production).await;
    let page = app.get("/").await;
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
    let api = app.get("/api/session/me").await;
    assert_eq!(api.headers()["cache-control"], "no-store");
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    for instrument in ["x-tokenlab-db-queries", "x-tokenlab-cookies"] {
        let sent = app
            .client
            .get(app.url("/api/session/me"))
            .header("cookie", "tl_session=whatever")
            .send()
            .await
            .unwrap();
        assert!(sent.headers().get(instrument).is_none(), "{instrument} in production");
    }
    app.stop().await;
}

backend_test!(garbage_collection_forgets_what_can_no_longer_matter);
async fn garbage_collection_forgets_what_can_no_longer_matter(backend: Backend) {
    let app = spawn_app(backend).await;
    let guess = TestUser::alice().with_password("wrong guess");
    assert_eq!(app.try_session_login(&guess).await.status(), StatusCode::UNAUTHORIZED);
    app.password_grant(&TestUser::alice()).await;
    let key = crate::dpop_client::ProofKey::ed25519(9);
    crate::dpop::DpopClient::new(&app, key).login(&TestUser::alice()).await;
    let phone = app.device_login(&TestUser::alice(), "phone-to-forget", "hardened").await;
    let id = phone.body["device"]["id"].as_i64().unwrap();
    let revoked =
        phone.credential.apply(app.client.delete(app.url(&format!("/api/device/devices/{id}"))));
    assert_eq!(revoked.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let tables =
        ["login_throttle", "refresh_families", "refresh_tokens", "devices", "dpop_proofs_seen"];
    for table in tables {
        let n = app.count(&format!("SELECT COUNT(*) AS n FROM {table}")).await;
        assert!(n > 0, "{table} has rows to collect");
    }
    // Past the refresh family's two months and the revoked device's thirty days of memory.
    app.clock.advance(time::Duration::days(91));
    let collector =
        Application::build(Settings::for_tests(app.database_url()), app.clock.clone()).await;
    tokenlab_server::app::collect_once(collector.unwrap().state()).await.unwrap();
    for table in tables {
        let n = app.count(&format!("SELECT COUNT(*) AS n FROM {table}")).await;
        assert_eq!(n, 0, "{backend:?}: {table} still has {n} rows");
    }
    app.stop().await;
}

backend_test!(a_path_parameter_that_does_not_parse_answers_the_one_error_shape);
async fn a_path_parameter_that_does_not_parse_answers_the_one_error_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let phone = app.device_login(&TestUser::alice(), "phone-path-shape", "hardened").await;
    let too_big = "/api/device/devices/9223372036854775808";
    let response =
        phone.credential.apply(app.client.delete(app.url(too_big))).send().await.unwrap();
    assert_refused(response, StatusCode::BAD_REQUEST, "bad_request").await;
    app.stop().await;
}
