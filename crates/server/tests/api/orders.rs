//! Duplicate-submit protection: one-time form tokens and Idempotency-Key.

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};
use tokenlab_core::Clock as _;
use tokenlab_server::api::orders::order_fingerprint;

use crate::helpers::{
    Backend, Credential, TestApp, TestUser, assert_refused, spawn_app, spawn_app_with,
};

/// `POST /api/orders` as `who`, from a client without cookies.
fn post_order(app: &TestApp, who: &Credential) -> RequestBuilder {
    who.apply(Client::new().post(app.url("/api/orders")))
}

async fn form_token(app: &TestApp, who: &Credential) -> String {
    let body: Value = app.get_as("/api/orders/form-token", who).await.json().await.unwrap();
    body["form_token"].as_str().unwrap().to_owned()
}

async fn order_with_token(app: &TestApp, who: &Credential, token: &str) -> Response {
    post_order(app, who)
        .json(&json!({"item": "green tea", "quantity": 2, "form_token": token}))
        .send()
        .await
        .unwrap()
}

async fn order_with_key(app: &TestApp, who: &Credential, key: &str, item: &str) -> Response {
    post_order(app, who)
        .header("idempotency-key", key)
        .json(&json!({"item": item, "quantity": 1}))
        .send()
        .await
        .unwrap()
}

async fn order_count(app: &TestApp, who: &Credential) -> usize {
    let body: Value = app.get_as("/api/orders", who).await.json().await.unwrap();
    body["orders"].as_array().unwrap().len()
}

backend_test!(a_form_token_works_once_and_the_duplicate_names_the_original_order);
async fn a_form_token_works_once_and_the_duplicate_names_the_original_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let token = form_token(&app, &alice).await;
    assert_eq!(token.len(), 64, "256 bits, hex");

    let first = order_with_token(&app, &alice, &token).await;
    assert_eq!(first.status(), StatusCode::CREATED, "{backend:?}");
    let created: Value = first.json().await.unwrap();
    assert_eq!(created["order"]["item"], "green tea");
    let id = created["order"]["id"].as_i64().unwrap();

    let again = order_with_token(&app, &alice, &token).await;
    let body = assert_refused(again, StatusCode::CONFLICT, "duplicate_submit").await;
    assert_eq!(body["original_order_id"], id);
    assert_eq!(order_count(&app, &alice).await, 1);
    app.stop().await;
}

backend_test!(fifty_parallel_submissions_of_one_form_token_make_one_order);
async fn fifty_parallel_submissions_of_one_form_token_make_one_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let token = form_token(&app, &alice).await;
    let submissions: Vec<_> = (0..50)
        .map(|_| {
            let request = post_order(&app, &alice)
                .json(&json!({"item": "green tea", "quantity": 2, "form_token": token}));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut results = Vec::new();
    for submission in submissions {
        results.push(submission.await.unwrap());
    }
    let created: Vec<_> = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(created.len(), 1, "{backend:?}: {results:?}");
    let id = created[0].1["order"]["id"].clone();
    for (status, body) in &results {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::CONFLICT, "{backend:?}: {body}");
            assert_eq!(body["reason"], "duplicate_submit");
            assert_eq!(body["original_order_id"], id);
        }
    }
    assert_eq!(order_count(&app, &alice).await, 1);
    app.stop().await;
}

backend_test!(fifty_parallel_submissions_with_one_idempotency_key_make_one_order);
async fn fifty_parallel_submissions_with_one_idempotency_key_make_one_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let submissions: Vec<_> = (0..50)
        .map(|_| {
            let request = post_order(&app, &alice)
                .header("idempotency-key", "order-50")
                .json(&json!({"item": "green tea", "quantity": 1}));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                let replayed = response.headers().contains_key("idempotent-replayed");
                (status, replayed, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut results = Vec::new();
    for submission in submissions {
        results.push(submission.await.unwrap());
    }
    let mut order_ids = std::collections::BTreeSet::new();
    for (status, _, body) in &results {
        match *status {
            StatusCode::CREATED => {
                order_ids.insert(body["order"]["id"].as_i64().unwrap());
            }
            StatusCode::CONFLICT => assert_eq!(body["reason"], "idempotency_key_in_use"),
            other => panic!("{backend:?}: unexpected {other}: {body}"),
        }
    }
    assert_eq!(order_ids.len(), 1, "{backend:?}: {results:?}");
    let originals = results.iter().filter(|(s, r, _)| *s == StatusCode::CREATED && !r).count();
    assert_eq!(originals, 1, "exactly one response is not a replay");
    assert_eq!(order_count(&app, &alice).await, 1);
    app.stop().await;
}

backend_test!(a_retry_gets_the_first_response_byte_for_byte);
async fn a_retry_gets_the_first_response_byte_for_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let first = order_with_key(&app, &alice, "\"retry-me\"", "oolong").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first_body = first.bytes().await.unwrap();

    // The draft's quoted form and a bare token name the same key.
    let retry = order_with_key(&app, &alice, "retry-me", "oolong").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.bytes().await.unwrap(), first_body);
    assert_eq!(order_count(&app, &alice).await, 1);

    // The same key with another payload is a client bug.
    let other = order_with_key(&app, &alice, "retry-me", "sencha").await;
    assert_refused(other, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    app.stop().await;
}

/// Waits until the first request has claimed its key: polls the database, which is the event.
async fn wait_for_claim(app: &TestApp, key: &str) {
    let sql = format!("SELECT COUNT(*) AS n FROM idempotency_keys WHERE key = '{key}'");
    app.wait_for_count(&sql, 1).await;
}

backend_test!(a_key_in_flight_answers_409_and_then_replays);
async fn a_key_in_flight_answers_409_and_then_replays(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let slow = {
        let request = post_order(&app, &alice)
            .header("idempotency-key", "slow-one")
            .header("x-demo-delay-ms", "1500")
            .json(&json!({"item": "matcha", "quantity": 1}));
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    wait_for_claim(&app, "slow-one").await;
    let meanwhile = order_with_key(&app, &alice, "slow-one", "matcha").await;
    assert_refused(meanwhile, StatusCode::CONFLICT, "idempotency_key_in_use").await;

    let first = slow.await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let after = order_with_key(&app, &alice, "slow-one", "matcha").await;
    assert_eq!(after.headers()["idempotent-replayed"], "true");
    assert_eq!(order_count(&app, &alice).await, 1);
    app.stop().await;
}

backend_test!(a_key_stuck_in_flight_by_a_crash_is_released_after_the_lease);
async fn a_key_stuck_in_flight_by_a_crash_is_released_after_the_lease(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    // What a crash mid-request leaves behind: a claimed, unfinished key whose lease runs 60 s.
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let now = app.clock.now().unix_timestamp(); // the server's: its demo clock has not moved
    let sql = format!(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, claim, finished, lease_until, expires_at) \
         VALUES (1, 'crashed', '{}', 'dead-request', false, {}, {})",
        order_fingerprint("chai", 1),
        now + 60,
        now + 86_400
    );
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();

    let blocked = order_with_key(&app, &alice, "crashed", "chai").await;
    assert_refused(blocked, StatusCode::CONFLICT, "idempotency_key_in_use").await;
    app.advance_clock(61).await;
    let recovered = order_with_key(&app, &alice, "crashed", "chai").await;
    assert_eq!(recovered.status(), StatusCode::CREATED, "{backend:?}");
    assert!(!recovered.headers().contains_key("idempotent-replayed"));
    assert_eq!(order_count(&app, &alice).await, 1);
    app.stop().await;
}

backend_test!(a_key_is_forgotten_after_its_retention);
async fn a_key_is_forgotten_after_its_retention(backend: Backend) {
    // Sessions outlive the retention here, so only the key's retention is under test.
    let app = spawn_app_with(backend, |s| {
        s.session_idle_timeout = 48 * 3600;
        s.session_absolute_timeout = 48 * 3600;
    })
    .await;
    let alice = app.session_login(&TestUser::alice()).await;
    assert_eq!(order_with_key(&app, &alice, "daily", "tea").await.status(), StatusCode::CREATED);
    app.advance_clock(24 * 3600 - 60).await;
    let replay = order_with_key(&app, &alice, "daily", "tea").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    app.advance_clock(60).await;
    let fresh = order_with_key(&app, &alice, "daily", "tea").await;
    assert_eq!(fresh.status(), StatusCode::CREATED);
    assert!(!fresh.headers().contains_key("idempotent-replayed"), "retention is over");
    assert_eq!(order_count(&app, &alice).await, 2);
    app.stop().await;
}

backend_test!(keys_belong_to_their_user);
async fn keys_belong_to_their_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.register_user().await;
    let (alice, bob) = (app.session_login(&TestUser::alice()).await, app.session_login(&bob).await);
    let a = order_with_key(&app, &alice, "same-key", "tea").await;
    let b = order_with_key(&app, &bob, "same-key", "tea").await;
    assert_eq!((a.status(), b.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(!b.headers().contains_key("idempotent-replayed"));
    assert_eq!((order_count(&app, &alice).await, order_count(&app, &bob).await), (1, 1));

    // Someone else's form token is refused, as is an unknown one.
    let alices_token = form_token(&app, &alice).await;
    let stolen = order_with_token(&app, &bob, &alices_token).await;
    assert_refused(stolen, StatusCode::UNPROCESSABLE_ENTITY, "form_token_invalid").await;
    let made_up = order_with_token(&app, &bob, &"0".repeat(64)).await;
    assert_refused(made_up, StatusCode::UNPROCESSABLE_ENTITY, "form_token_invalid").await;
    // Alice's token is still good for Alice.
    assert_eq!(order_with_token(&app, &alice, &alices_token).await.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn form_tokens_expire() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.form_token_lifetime = 60).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let token = form_token(&app, &alice).await;
    app.advance_clock(60).await;
    let late = order_with_token(&app, &alice, &token).await;
    assert_refused(late, StatusCode::UNPROCESSABLE_ENTITY, "form_token_invalid").await;
    assert_eq!(order_count(&app, &alice).await, 0);
    app.stop().await;
}

backend_test!(orders_need_a_signed_in_caller_and_a_protection);
async fn orders_need_a_signed_in_caller_and_a_protection(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = Client::new();
    let response = anonymous
        .post(app.url("/api/orders"))
        .header("idempotency-key", "k")
        .json(&json!({"item": "tea", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_refused(response, StatusCode::UNAUTHORIZED, "not_logged_in").await;

    let alice = app.session_login(&TestUser::alice()).await;
    let bare = post_order(&app, &alice).json(&json!({"item": "tea", "quantity": 1}));
    assert_refused(bare.send().await.unwrap(), StatusCode::BAD_REQUEST, "idempotency_key_missing")
        .await;
    let token = form_token(&app, &alice).await;
    let both = post_order(&app, &alice)
        .header("idempotency-key", "k")
        .json(&json!({"item": "tea", "quantity": 1, "form_token": token}));
    assert_refused(both.send().await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        .await;
    let bad_key = order_with_key(&app, &alice, "ключ", "tea").await;
    assert_refused(bad_key, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    let bad_order = post_order(&app, &alice)
        .header("idempotency-key", "k2")
        .json(&json!({"item": "tea", "quantity": 0}));
    assert_refused(
        bad_order.send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_order",
    )
    .await;
    // A refused submission does not spend the token.
    assert_eq!(order_with_token(&app, &alice, &token).await.status(), StatusCode::CREATED);
    app.stop().await;
}

/// Found by Schemathesis (`just fuzz-api`): JSON Schema's `integer` includes `2.0`, and the document
/// calls the quantity an integer; so does the demo's delay header a string it may ignore.
#[tokio::test]
async fn a_whole_quantity_written_with_a_fraction_is_that_quantity_and_a_bogus_delay_is_ignored() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let placed = post_order(&app, &alice)
        .header("idempotency-key", "whole-quantity")
        .header("x-demo-delay-ms", "9223372036854775808")
        .json(&json!({"item": "green tea", "quantity": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::CREATED);
    let body: Value = placed.json().await.unwrap();
    assert_eq!(body["order"]["quantity"], 2);
    let half = post_order(&app, &alice)
        .header("idempotency-key", "half-quantity")
        .json(&json!({"item": "green tea", "quantity": 2.5}))
        .send()
        .await
        .unwrap();
    assert_refused(half, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    app.stop().await;
}
