//! Scheme 1: the device token, as written and hardened.

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Credential, DeviceLogin, TestApp, TestUser, assert_refused, set_cookie, spawn_app,
};

/// One browser on one device: a cookie jar, the device id, and the token it was given.
struct Device {
    client: Client,
    id: String,
    token: String,
}

fn jar() -> Client {
    Client::builder().cookie_store(true).build().unwrap()
}

/// Alice signs in on `device_id` in `mode`, in a browser that keeps the cookie it was given; the
/// device, and the login's body.
async fn login(app: &TestApp, device_id: &str, mode: &str) -> (Device, Value) {
    let DeviceLogin { credential, body } =
        app.device_login(&TestUser::alice(), device_id, mode).await;
    let Credential::Device { cookie, device_id, token } = credential else {
        unreachable!("a device login gives a device credential")
    };
    let cookies = Arc::new(Jar::default());
    cookies.add_cookie_str(&format!("tl_device={cookie}; Path=/"), &app.base.parse().unwrap());
    let client = Client::builder().cookie_provider(cookies).build().unwrap();
    (Device { client, id: device_id, token }, body)
}

impl Device {
    async fn call(&mut self, app: &TestApp, path: &str) -> Response {
        let response = self
            .client
            .get(app.url(path))
            .header("x-device-id", &self.id)
            .header("x-device-token", &self.token)
            .send()
            .await
            .unwrap();
        // The browser client stores a rotated token transparently; so does this one.
        if let Some(rotated) = response.headers().get("x-device-token") {
            self.token = rotated.to_str().unwrap().to_owned();
        }
        response
    }

    async fn me(&mut self, app: &TestApp) -> Response {
        self.call(app, "/api/device/me").await
    }

    /// The same device, in a browser that lost its cookie (or an attacker's client): only the
    /// headers travel.
    fn without_cookie(&self) -> Device {
        Device { client: jar(), id: self.id.clone(), token: self.token.clone() }
    }
}

async fn evict_all_sessions(app: &TestApp) {
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    db.execute_raw(Statement::from_string(db.get_database_backend(), "DELETE FROM sessions"))
        .await
        .unwrap();
}

backend_test!(login_and_the_session_check);
async fn login_and_the_session_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut device, body) = login(&app, "laptop-0001", "hardened").await;
    assert_eq!(device.token.len(), 64, "a 256-bit secret");
    assert_eq!(body["device"]["mode"], "hardened");
    assert!(body["token_expires_at"].is_string());
    assert!(body["session"]["idle_expires_at"].is_string());

    let response = device.me(&app).await;
    assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
    assert!(response.headers().get("x-session-renewed").is_none());
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["renewed"], false);
    assert_eq!(me["user"]["username"], "alice");

    // A valid cookie with the wrong token is refused: the token is compared with the session's.
    let real = std::mem::replace(&mut device.token, "f".repeat(64));
    assert_refused(device.me(&app).await, StatusCode::UNAUTHORIZED, "device_token_mismatch").await;
    device.token = real;
    assert_eq!(device.me(&app).await.status(), StatusCode::OK);

    let bare = Client::new().get(app.url("/api/device/me")).send().await.unwrap();
    assert_refused(bare, StatusCode::UNAUTHORIZED, "device_credentials_missing").await;
    app.stop().await;
}

backend_test!(an_evicted_or_timed_out_session_is_re_attached_from_the_database);
async fn an_evicted_or_timed_out_session_is_re_attached_from_the_database(backend: Backend) {
    for mode in ["as_written", "hardened"] {
        let app = spawn_app(backend).await;
        let (mut device, _) = login(&app, "phone-0002", mode).await;
        let before = device.token.clone();

        // Evicted: the session record is gone.
        evict_all_sessions(&app).await;
        let response = device.me(&app).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?} {mode}");
        assert_eq!(response.headers()["x-session-renewed"], "1");
        assert!(set_cookie(&response, "tl_device").is_some(), "a new session id");
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["renewed"], true);
        assert_eq!(device.token != before, mode == "hardened", "only hardened rotates");
        // The new session serves the next call without the database fallback.
        let next = device.me(&app).await;
        assert!(next.headers().get("x-session-renewed").is_none());

        // Timed out on the demo clock: no password needed either.
        app.advance_clock(31 * 60).await;
        let response = device.me(&app).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?} {mode} after idle");
        assert_eq!(response.headers()["x-session-renewed"], "1");
        app.stop().await;
    }
}

backend_test!(revoking_a_device_stops_it_at_once_and_spares_the_others);
async fn revoking_a_device_stops_it_at_once_and_spares_the_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut laptop, laptop_body) = login(&app, "laptop-0003", "hardened").await;
    let (mut phone, _) = login(&app, "phone-0003", "hardened").await;

    let list: Value = phone.call(&app, "/api/device/devices").await.json().await.unwrap();
    let entries = list["devices"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries.iter().filter(|d| d["current"] == true).count(), 1);

    let laptop_pk = laptop_body["device"]["id"].as_i64().unwrap();
    let revoke = phone
        .client
        .delete(app.url(&format!("/api/device/devices/{laptop_pk}")))
        .header("x-device-id", &phone.id)
        .header("x-device-token", &phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    // Its live session dies with it, and so does the fallback to the database.
    assert_refused(laptop.me(&app).await, StatusCode::UNAUTHORIZED, "device_revoked").await;
    let mut elsewhere = laptop.without_cookie();
    assert_refused(elsewhere.me(&app).await, StatusCode::UNAUTHORIZED, "device_revoked").await;
    assert_eq!(phone.me(&app).await.status(), StatusCode::OK);

    let logout_all = phone
        .client
        .post(app.url("/api/device/logout-all"))
        .header("x-device-id", &phone.id)
        .header("x-device-token", &phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout_all.status(), StatusCode::NO_CONTENT);
    let mut phone_elsewhere = phone.without_cookie();
    assert_refused(phone_elsewhere.me(&app).await, StatusCode::UNAUTHORIZED, "device_revoked")
        .await;
    app.stop().await;
}

backend_test!(as_written_anyone_who_knows_the_device_id_is_the_user);
async fn as_written_anyone_who_knows_the_device_id_is_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let (victim, body) = login(&app, "victim-device-1", "as_written").await;
    assert_eq!(victim.token, victim.id, "as written, the token is the device id");
    assert!(body["token_expires_at"].is_null(), "and it never expires");

    // The documented weakness: an attacker with only the device id (no password, no cookie).
    let mut attacker =
        Device { client: jar(), id: "victim-device-1".into(), token: "victim-device-1".into() };
    let response = attacker.me(&app).await;
    assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["user"]["username"], "alice");
    app.stop().await;
}

backend_test!(hardened_the_device_id_alone_gets_nothing);
async fn hardened_the_device_id_alone_gets_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (victim, _) = login(&app, "victim-device-2", "hardened").await;
    let mut attacker = Device { client: jar(), id: victim.id.clone(), token: victim.id.clone() };
    assert_refused(attacker.me(&app).await, StatusCode::UNAUTHORIZED, "device_unknown").await;
    // And guessing does not lock the victim out.
    let mut victim = victim.without_cookie();
    assert_eq!(victim.me(&app).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(a_replaced_secret_after_the_grace_window_revokes_the_device);
async fn a_replaced_secret_after_the_grace_window_revokes_the_device(backend: Backend) {
    let app = spawn_app(backend).await;
    let (device, _) = login(&app, "tablet-0004", "hardened").await;
    let stolen = device.token.clone();
    // The victim's browser re-attaches (rotating the secret)...
    let mut victim = device.without_cookie();
    assert_eq!(victim.me(&app).await.status(), StatusCode::OK);
    assert_ne!(victim.token, stolen);
    // ...and a thief replays the old secret after the grace window.
    app.advance_clock(31).await;
    let mut thief = Device { client: jar(), id: victim.id.clone(), token: stolen };
    assert_refused(thief.me(&app).await, StatusCode::UNAUTHORIZED, "device_token_reused").await;
    // Both now have to log in again: the device is revoked.
    assert_refused(victim.me(&app).await, StatusCode::UNAUTHORIZED, "device_revoked").await;
    app.stop().await;
}

backend_test!(parallel_calls_during_a_re_attach_rotate_once_without_a_false_alarm);
async fn parallel_calls_during_a_re_attach_rotate_once_without_a_false_alarm(backend: Backend) {
    let app = spawn_app(backend).await;
    let (device, _) = login(&app, "desktop-0005", "hardened").await;
    // Ten requests of one page, all with the old secret and no live session.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (url, id, token) =
                (app.url("/api/device/me"), device.id.clone(), device.token.clone());
            tokio::spawn(async move {
                let response = Client::new()
                    .get(url)
                    .header("x-device-id", id)
                    .header("x-device-token", token)
                    .send()
                    .await
                    .unwrap();
                let rotated = response
                    .headers()
                    .get("x-device-token")
                    .map(|v| v.to_str().unwrap().to_owned());
                (response.status(), rotated)
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK), "{backend:?}: {results:?}");
    let rotations: Vec<_> = results.iter().filter_map(|(_, t)| t.clone()).collect();
    assert_eq!(rotations.len(), 1, "exactly one rotation: {results:?}");
    let mut after = Device { client: jar(), id: device.id.clone(), token: rotations[0].clone() };
    assert_eq!(after.me(&app).await.status(), StatusCode::OK, "no theft alarm");
    app.stop().await;
}

backend_test!(hardened_tokens_have_an_absolute_lifetime);
async fn hardened_tokens_have_an_absolute_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut device, _) = login(&app, "laptop-0006", "hardened").await;
    app.advance_clock(59 * 86_400).await;
    assert_eq!(device.me(&app).await.status(), StatusCode::OK, "re-attached, rotated");
    app.advance_clock(86_400).await;
    assert_refused(device.me(&app).await, StatusCode::UNAUTHORIZED, "device_token_expired").await;

    // As written, nothing ever expires.
    let (mut forever, _) = login(&app, "laptop-0007", "as_written").await;
    app.advance_clock(365 * 86_400).await;
    assert_eq!(forever.me(&app).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(the_database_holds_no_hardened_secret);
async fn the_database_holds_no_hardened_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut device, _) = login(&app, "laptop-0008", "hardened").await;
    let first = device.token.clone();
    evict_all_sessions(&app).await;
    assert_eq!(device.me(&app).await.status(), StatusCode::OK);
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let backend_kind = db.get_database_backend();
    let mut dump = String::new();
    let text_columns: [(&str, &[&str]); 2] = [
        ("devices", &["device_id", "name", "mode", "token", "token_hash", "previous_token_hash"]),
        ("sessions", &["id_hash", "data"]),
    ];
    for (table, columns) in text_columns {
        let rows = db
            .query_all_raw(Statement::from_string(backend_kind, format!("SELECT * FROM {table}")))
            .await
            .unwrap();
        for row in rows {
            for column in columns {
                if let Some(value) = row.try_get::<Option<String>>("", column).unwrap() {
                    dump.push_str(&value);
                    dump.push('\n');
                }
            }
        }
    }
    assert!(dump.contains("laptop-0008"), "the dump is real: {dump}");
    for secret in [&first, &device.token] {
        assert!(!dump.contains(secret.as_str()), "secret {secret} stored in plain text");
    }
    app.stop().await;
}

backend_test!(a_device_caller_can_place_orders_too);
async fn a_device_caller_can_place_orders_too(backend: Backend) {
    let app = spawn_app(backend).await;
    for mode in ["as_written", "hardened"] {
        let device_id = format!("orders-{mode}");
        let (device, _) = login(&app, &device_id, mode).await;
        let send = |key: &str| {
            Client::new()
                .post(app.url("/api/orders"))
                .header("x-device-id", &device.id)
                .header("x-device-token", &device.token)
                .header("idempotency-key", key.to_owned())
                .json(&json!({"item": "green tea", "quantity": 1}))
                .send()
        };
        let first = send(mode).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED, "{backend:?} {mode}");
        assert!(first.headers().get("x-device-token").is_none(), "orders never rotate");
        let again = send(mode).await.unwrap();
        assert_eq!(again.headers()["idempotent-replayed"], "true");
    }
    let forged = Client::new()
        .get(app.url("/api/orders"))
        .header("x-device-id", "orders-hardened")
        .header("x-device-token", "orders-hardened")
        .send()
        .await
        .unwrap();
    assert_refused(forged, StatusCode::UNAUTHORIZED, "device_unknown").await;
    app.stop().await;
}
