//! Scheme 2: the session id as the token.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokenlab_server::config::TrustedProxies;

use crate::helpers::{
    Backend, Credential, TestApp, TestUser, assert_refused, production, set_cookie,
    set_cookie_line, spawn_app, spawn_app_with,
};

const COOKIE: &str = "tl_session";

/// A client without a cookie jar, so each test says exactly which cookie it sends.
fn bare() -> Client {
    Client::new()
}

/// Alice logs in from a browser that already holds the session cookie `held`.
async fn login_holding(app: &TestApp, held: &Credential) -> Response {
    let alice = TestUser::alice();
    held.apply(bare().post(app.url("/api/session/login")))
        .json(&json!({"username": alice.username, "password": alice.password}))
        .send()
        .await
        .unwrap()
}

fn at(body: &Value, field: &str) -> OffsetDateTime {
    OffsetDateTime::parse(body["session"][field].as_str().unwrap(), &Rfc3339).unwrap()
}

backend_test!(login_me_logout);
async fn login_me_logout(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.try_session_login(&TestUser::alice()).await;
    assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
    let cookie = set_cookie(&response, COOKIE).unwrap();
    let alice = Credential::Session(cookie.clone());
    assert_eq!(response.headers()["x-tokenlab-cookies"], "set=tl_session");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert!(body["user"]["id"].is_i64());
    let (idle, absolute) = (at(&body, "idle_expires_at"), at(&body, "absolute_expires_at"));
    assert_eq!((absolute - idle).whole_minutes(), 12 * 60 - 30);
    // The masked id shows only a prefix of the real cookie value.
    let masked = body["session"]["id_masked"].as_str().unwrap();
    assert!(masked.starts_with(&cookie[..4]) && !masked.contains(&cookie), "{masked}");

    let response = app.session_me(&alice).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");

    let response = alice.apply(bare().post(app.url("/api/session/logout"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The browser is told to drop the cookie, and the server record is gone: replaying the old
    // cookie does not work.
    assert!(set_cookie_line(&response, COOKIE).is_some_and(|l| l.contains("Max-Age=0")));
    assert_refused(app.session_me(&alice).await, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    app.stop().await;
}

#[tokio::test]
async fn without_a_cookie_nobody_is_logged_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = bare().get(app.url("/api/session/me")).send().await.unwrap();
    assert!(set_cookie(&response, COOKIE).is_none(), "no session is created for anonymous calls");
    assert_refused(response, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    app.stop().await;
}

backend_test!(the_session_id_changes_at_login_and_a_planted_id_is_never_adopted);
async fn the_session_id_changes_at_login_and_a_planted_id_is_never_adopted(backend: Backend) {
    let app = spawn_app(backend).await;
    // An attacker plants a well-formed id of their own choosing in the victim's browser.
    let planted = Credential::Session("AAAAAAAAAAAAAAAAAAAAAA".to_owned());
    let response = login_holding(&app, &planted).await;
    assert_eq!(response.status(), StatusCode::OK);
    let issued = Credential::Session(set_cookie(&response, COOKIE).unwrap());
    assert_ne!(issued.session_cookie(), planted.session_cookie());
    assert_refused(app.session_me(&planted).await, StatusCode::UNAUTHORIZED, "not_logged_in").await;

    // Logging in again with a valid session replaces it too: the cookie before login is never
    // the cookie after it, and the old one stops working.
    let response = login_holding(&app, &issued).await;
    let reissued = Credential::Session(set_cookie(&response, COOKIE).unwrap());
    assert_ne!(reissued.session_cookie(), issued.session_cookie());
    assert_refused(app.session_me(&issued).await, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    assert_eq!(app.session_me(&reissued).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(idle_timeout_slides_with_activity_and_expiry_is_reported_once);
async fn idle_timeout_slides_with_activity_and_expiry_is_reported_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let first: Value = app.session_me(&alice).await.json().await.unwrap();

    // idle − 1 s: still valid, and the idle expiry moves forward.
    app.advance_clock(30 * 60 - 1).await;
    let response = app.session_me(&alice).await;
    assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
    let renewed: Value = response.json().await.unwrap();
    assert!(at(&renewed, "idle_expires_at") > at(&first, "idle_expires_at"));
    assert_eq!(at(&renewed, "absolute_expires_at"), at(&first, "absolute_expires_at"));

    // idle + 1 s after that activity: expired, said once; then the session is simply gone.
    app.advance_clock(30 * 60 + 1).await;
    let expired =
        assert_refused(app.session_me(&alice).await, StatusCode::UNAUTHORIZED, "session_expired")
            .await;
    assert!(expired["message"].as_str().unwrap().contains("idle"));
    assert_refused(app.session_me(&alice).await, StatusCode::UNAUTHORIZED, "not_logged_in").await;

    // The user's remedy is to log in again.
    let alice = app.session_login(&TestUser::alice()).await;
    assert_eq!(app.session_me(&alice).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(activity_does_not_extend_the_absolute_timeout);
async fn activity_does_not_extend_the_absolute_timeout(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let start: Value = app.session_me(&alice).await.json().await.unwrap();
    let absolute = at(&start, "absolute_expires_at");
    // A request every 29 minutes keeps the idle timeout from ever firing.
    let mut elapsed_minutes = 0;
    loop {
        app.advance_clock(29 * 60).await;
        elapsed_minutes += 29;
        let response = app.session_me(&alice).await;
        if response.status() != StatusCode::OK {
            let body = assert_refused(response, StatusCode::UNAUTHORIZED, "session_expired").await;
            assert!(body["message"].as_str().unwrap().contains("absolute"), "{body}");
            break;
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(at(&body, "absolute_expires_at"), absolute);
        assert!(elapsed_minutes < 12 * 60, "still valid after {elapsed_minutes} min");
    }
    assert!(elapsed_minutes >= 12 * 60, "expired early, after {elapsed_minutes} min");
    app.stop().await;
}

backend_test!(unknown_user_and_wrong_password_look_the_same);
async fn unknown_user_and_wrong_password_look_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    let wrong_password =
        app.try_session_login(&TestUser::alice().with_password("not her password")).await;
    let unknown_user = app.try_session_login(&TestUser::new("mallory", "not her password")).await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong_password, COOKIE).is_none());
    let a: Value = wrong_password.json().await.unwrap();
    let b: Value = unknown_user.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["reason"], "invalid_credentials");
    app.stop().await;
}

backend_test!(the_eleventh_failure_is_rate_limited_and_success_resets_the_count);
async fn the_eleventh_failure_is_rate_limited_and_success_resets_the_count(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.register_user().await;
    let guess = victim.with_password("guess");
    for _ in 0..9 {
        assert_eq!(app.try_session_login(&guess).await.status(), StatusCode::UNAUTHORIZED);
    }
    // A success clears the failures...
    assert_eq!(app.try_session_login(&victim).await.status(), StatusCode::OK);
    // ...so ten more failures are allowed, and the eleventh is refused.
    for attempt in 1..=10 {
        let status = app.try_session_login(&guess).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let refused = app.try_session_login(&guess).await;
    let retry_after: i64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    // Every attempt came at the same instant, so the whole window is left.
    assert_eq!(retry_after, 15 * 60, "Retry-After: {retry_after}");
    assert_refused(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Even the right password waits: otherwise the limit would be an oracle.
    let right = app.try_session_login(&victim).await;
    assert_refused(right, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Other accounts are not affected.
    assert_eq!(app.try_session_login(&TestUser::alice()).await.status(), StatusCode::OK);
    // After the window, the account can log in again.
    app.advance_clock(15 * 60).await;
    assert_eq!(app.try_session_login(&victim).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(concurrent_guesses_cannot_slip_under_the_limit);
async fn concurrent_guesses_cannot_slip_under_the_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let guesses = (0..20).map(|i| {
        let url = app.url("/api/session/login");
        tokio::spawn(async move {
            bare()
                .post(url)
                .json(&json!({"username": "alice", "password": format!("guess {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let mut statuses = Vec::new();
    for guess in guesses.collect::<Vec<_>>() {
        statuses.push(guess.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, limited), (10, 10), "{backend:?}: {statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_client_bound_counts_by_address_and_forwarded_for_only_from_a_trusted_proxy() {
    for (trusted, expect_limited) in [(vec![], true), (vec!["127.0.0.1".parse().unwrap()], false)] {
        let app = spawn_app_with(Backend::Sqlite, |s| {
            s.login_max_failures_per_client = 3;
            s.trusted_proxies = Some(TrustedProxies(trusted.clone()));
        })
        .await;
        let mut last = StatusCode::OK;
        for i in 0..4 {
            // Different accounts, so only the per-client bound can apply; a different claimed
            // address each time, which only a trusted proxy may make.
            last = bare()
                .post(app.url("/api/session/login"))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .json(&json!({"username": format!("user{i}"), "password": "whatever1"}))
                .send()
                .await
                .unwrap()
                .status();
        }
        let expected =
            if expect_limited { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNAUTHORIZED };
        assert_eq!(last, expected, "trusted proxies {trusted:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn cookie_attributes() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.try_session_login(&TestUser::alice()).await;
    let line = set_cookie_line(&response, COOKIE).unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    assert!(!line.contains("Secure"), "plain http in the demo: {line}");
    assert!(!line.contains("Domain"), "{line}");
    app.stop().await;

    // Served over https: Secure, and the __Host- prefix that pins the cookie to this host.
    let app = spawn_app_with(Backend::Sqlite, production).await;
    let bob = app.register_user().await;
    let response = app.try_session_login(&bob).await;
    assert_eq!(response.status(), StatusCode::OK);
    let line = set_cookie_line(&response, "__Host-tl_session").expect("__Host- cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    app.stop().await;
}

backend_test!(cross_site_posts_are_refused);
async fn cross_site_posts_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"username": "alice", "password": "wonderland-demo"});
    let cases: [(&[(&str, &str)], StatusCode); 5] = [
        (&[("origin", "https://evil.example")], StatusCode::FORBIDDEN),
        (&[("sec-fetch-site", "cross-site")], StatusCode::FORBIDDEN),
        (&[("origin", "null")], StatusCode::FORBIDDEN),
        (&[("origin", &app.base), ("sec-fetch-site", "same-origin")], StatusCode::OK),
        (&[], StatusCode::OK), // curl sends neither header
    ];
    for (headers, expected) in cases {
        let mut request = bare().post(app.url("/api/session/login")).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        if expected == StatusCode::FORBIDDEN {
            assert!(set_cookie(&response, COOKIE).is_none());
            assert_refused(response, expected, "cross_site_request").await;
        } else {
            assert_eq!(response.status(), expected, "{headers:?}");
        }
    }
    // Every state-changing endpoint, not just login; reads are not affected.
    let register = bare()
        .post(app.url("/api/accounts"))
        .header("origin", "https://evil.example")
        .json(&json!({"username": "csrf", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_refused(register, StatusCode::FORBIDDEN, "cross_site_request").await;
    let read = bare()
        .get(app.url("/api/demo/clock"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_database_never_holds_a_usable_session_id() {
    use sea_orm::{ConnectionTrait as _, Statement};
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let cookie = alice.session_cookie();
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id_hash, data FROM sessions",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let id_hash: String = rows[0].try_get("", "id_hash").unwrap();
    let data: String = rows[0].try_get("", "data").unwrap();
    assert_ne!(id_hash, cookie);
    assert_eq!(id_hash.len(), 64);
    assert!(!data.contains(cookie));
    app.stop().await;
}
