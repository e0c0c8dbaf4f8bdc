//! Throttles no single client can turn against others, and a hashing pool that answers
//! `server_busy` instead of queueing without bound — attacked the way a guesser would.

use futures::future::join_all;
use reqwest::{Client, Response, StatusCode};
use serde_json::json;
use tokenlab_server::app::StartError;
use tokenlab_server::config::{ConfigError, Profile, TrustedProxies};
use tokenlab_server::{Application, Settings};

use crate::helpers::{
    Backend, TestApp, TestUser, assert_refused, spawn_app, spawn_app_with, test_clock,
};

/// A login for `user` from `address`, as the trusted proxy in front of the server reports it.
async fn login_from(app: &TestApp, address: &str, user: &TestUser) -> Response {
    Client::new()
        .post(app.url("/api/session/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"username": user.username, "password": user.password}))
        .send()
        .await
        .unwrap()
}

/// The server behind a proxy at 127.0.0.1 (the test client), so `X-Forwarded-For` names clients.
async fn behind_a_proxy(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.trusted_proxies =
            Some(TrustedProxies(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]));
        configure(settings);
    })
    .await
}

backend_test!(a_guesser_on_many_addresses_gets_only_the_account_ceiling_of_checks);
async fn a_guesser_on_many_addresses_gets_only_the_account_ceiling_of_checks(backend: Backend) {
    let app = behind_a_proxy(backend, |_| {}).await;
    let guess = TestUser::alice().with_password("not the password");
    // 1000 wrong passwords from 50 addresses, 20 each, eight at a time.
    let addresses: Vec<String> = (0..50).map(|i| format!("198.51.100.{i}")).collect();
    let attempts: Vec<&String> = (0..20).flat_map(|_| addresses.iter()).collect();
    let mut statuses = Vec::new();
    for batch in attempts.chunks(8) {
        let calls = batch.iter().map(|address| login_from(&app, address, &guess));
        for response in join_all(calls).await {
            statuses.push(response.status());
        }
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    eprintln!("{backend:?}: 1000 guesses from 50 addresses: {checked} checked, {limited} refused");
    assert_eq!(checked + limited, 1000, "{statuses:?}");
    assert_eq!(checked, 100, "the account-wide ceiling: at most 100 password checks an hour");

    // The ceiling closes the account to every address for the rest of the hour, the right
    // password included (otherwise the refusal would be an oracle).
    let refused = login_from(&app, "203.0.113.9", &TestUser::alice()).await;
    let body = assert_refused(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(body["message"].as_str().unwrap().contains("for this account"), "{body}");
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(login_from(&app, "203.0.113.9", &TestUser::alice()).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(an_innocent_client_logs_in_while_another_is_throttled_for_the_same_account);
async fn an_innocent_client_logs_in_while_another_is_throttled_for_the_same_account(
    backend: Backend,
) {
    let app = behind_a_proxy(backend, |_| {}).await;
    let guess = TestUser::alice().with_password("not the password");
    for attempt in 1..=10 {
        let status = login_from(&app, "198.51.100.1", &guess).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let throttled = login_from(&app, "198.51.100.1", &guess).await;
    let body = assert_refused(throttled, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(body["message"].as_str().unwrap().contains("from this address"), "{body}");
    // The guesser's own address waits even with the right password...
    let right_from_guesser = login_from(&app, "198.51.100.1", &TestUser::alice()).await;
    assert_refused(right_from_guesser, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ...while alice, from her own address, is not locked out by someone else's guesses.
    let alice = login_from(&app, "203.0.113.7", &TestUser::alice()).await;
    assert_eq!(alice.status(), StatusCode::OK);
    // A client over its own limit is refused without adding to the account's count: it keeps
    // guessing, and the account-wide bucket stays at the ten failures that were checked.
    for _ in 0..30 {
        let status = login_from(&app, "198.51.100.1", &guess).await.status();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let account =
        app.count("SELECT attempts AS n FROM login_throttle WHERE key = 'account:alice'").await;
    assert_eq!(account, 10);
    app.stop().await;
}

backend_test!(sixty_four_correct_logins_at_once_from_one_address_all_succeed);
async fn sixty_four_correct_logins_at_once_from_one_address_all_succeed(backend: Backend) {
    // Long deadlines: this test is about the throttle, not about how fast this machine is.
    let app = spawn_app_with(backend, |s| {
        s.hash_queue_timeout = 120;
        s.handler_timeout = 600;
    })
    .await;
    let alice = TestUser::alice();
    let logins = (0..64).map(|_| app.try_session_login(&alice));
    let statuses: Vec<StatusCode> =
        join_all(logins).await.into_iter().map(|r| r.status()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{backend:?}: {statuses:?}");
    app.stop().await;
}

backend_test!(registration_is_throttled_per_client);
async fn registration_is_throttled_per_client(backend: Backend) {
    let app = behind_a_proxy(backend, |s| s.registrations_per_client = 3).await;
    let register = |address: &'static str, name: String| {
        Client::new()
            .post(app.url("/api/accounts"))
            .header("x-forwarded-for", address)
            .json(&json!({"username": name, "password": "a long enough password"}))
            .send()
    };
    for i in 0..3 {
        let response = register("198.51.100.1", format!("bot{i}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let refused = register("198.51.100.1", "bot3".to_owned()).await.unwrap();
    let retry_after: i64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 3600, "the window began with the first registration");
    assert_refused(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let elsewhere = register("203.0.113.7", "human".to_owned()).await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::CREATED, "another address is not affected");
    app.stop().await;
}

backend_test!(a_saturated_hashing_pool_answers_server_busy_and_tokens_never_wait);
async fn a_saturated_hashing_pool_answers_server_busy_and_tokens_never_wait(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.hash_concurrency = Some(1);
        s.hash_queue_timeout = 0;
    })
    .await;
    let tokens = app.password_grant(&TestUser::alice()).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let alice = TestUser::alice();
    let logins = (0..16).map(|_| app.try_session_login(&alice));
    let responses = join_all(logins).await;
    let mut busy = 0;
    for response in responses {
        match response.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.headers()["retry-after"], "1");
                assert_refused(response, StatusCode::SERVICE_UNAVAILABLE, "server_busy").await;
                busy += 1;
            }
            other => panic!("{backend:?}: unexpected {other}"),
        }
    }
    assert!(busy > 0, "{backend:?}: sixteen logins on one slot with no queue: some must be busy");
    // An access token needs no hashing slot at all.
    assert_eq!(app.jwt_me(&access).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn production_refuses_to_start_without_naming_its_proxies() {
    let mut settings = Settings::for_tests("sqlite::memory:");
    settings.profile = Profile::Production;
    settings.public_url = Some("https://lab.example".to_owned());
    let result = Application::build(settings.clone(), test_clock()).await;
    assert!(
        matches!(result, Err(StartError::Config(ConfigError::ProductionWithoutTrustedProxies))),
        "started without --trusted-proxies"
    );
    settings.trusted_proxies = Some(TrustedProxies::default());
    let keys = crate::helpers::test_keys();
    settings.keys_dir = Some(keys.path().to_owned());
    assert!(Application::build(settings, test_clock()).await.is_ok(), "`none` is an answer");
}

backend_test!(production_refuses_a_database_that_still_holds_the_demo_account);
async fn production_refuses_a_database_that_still_holds_the_demo_account(backend: Backend) {
    // A database that served the lab: `alice` with the published password.
    let lab = spawn_app(backend).await;
    let keys = crate::helpers::test_keys();
    let production = |url: &str| {
        let mut settings = Settings::for_tests(url);
        crate::helpers::production(&mut settings);
        settings.keys_dir = Some(keys.path().to_owned());
        settings
    };
    let refused = Application::build(production(lab.database_url()), lab.clock.clone()).await;
    assert!(matches!(refused, Err(StartError::DemoAccountInProduction)), "{backend:?}");
    // Once her password is no longer the published one, the database may serve.
    let changed = Client::new()
        .post(lab.url("/api/accounts/password"))
        .json(&json!({"username": "alice", "current_password": "wonderland-demo", "new_password": "not published anywhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    let started = Application::build(production(lab.database_url()), lab.clock.clone()).await;
    assert!(started.is_ok(), "{backend:?}: {:?}", started.err());
    lab.stop().await;
}

backend_test!(a_password_longer_than_any_account_can_have_is_refused_without_hashing);
async fn a_password_longer_than_any_account_can_have_is_refused_without_hashing(backend: Backend) {
    // One hashing slot and no queue: had the megabyte been hashed, a held slot would show.
    let app = spawn_app_with(backend, |s| s.hash_concurrency = Some(1)).await;
    let huge = TestUser::alice().with_password(&"x".repeat(1_000_000));
    let refused = app.try_session_login(&huge).await;
    assert_refused(refused, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let counted =
        app.count("SELECT COUNT(*) AS n FROM login_throttle WHERE key LIKE 'pair:%'").await;
    assert_eq!(counted, 0, "refused before the throttle and the hash");
    app.stop().await;
}

backend_test!(ipv6_clients_are_counted_by_their_64_network);
async fn ipv6_clients_are_counted_by_their_64_network(backend: Backend) {
    let app = behind_a_proxy(backend, |s| s.login_max_failures_per_client = 3).await;
    // One subscriber's /64 holds 2^64 addresses; each new one must not be a fresh bucket.
    for i in 0..3 {
        let user = TestUser::new(&format!("target{i}"), "some guess");
        let status = login_from(&app, &format!("2001:db8:1:2::{i:x}"), &user).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let next = login_from(&app, "2001:db8:1:2:ffff::99", &TestUser::new("target9", "guess")).await;
    let body = assert_refused(next, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(body["message"].as_str().unwrap().contains("from this address"), "{body}");
    // The neighbouring /64 is someone else.
    let neighbour = login_from(&app, "2001:db8:1:3::1", &TestUser::new("target9", "guess")).await;
    assert_eq!(neighbour.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

backend_test!(a_login_refused_by_a_later_bucket_leaves_no_reservation_behind);
async fn a_login_refused_by_a_later_bucket_leaves_no_reservation_behind(backend: Backend) {
    // Room for one check at a time on the account: the other clients' logins, racing it, pass
    // their own buckets and are refused at the account's, which must give back what they took.
    let app = behind_a_proxy(backend, |s| s.login_account_ceiling = 1).await;
    let alice = TestUser::alice();
    let addresses: Vec<String> = (0..8).map(|i| format!("198.51.100.{}", 10 + i)).collect();
    let responses = join_all(addresses.iter().map(|a| login_from(&app, a, &alice))).await;
    let mut in_progress = 0;
    for response in responses {
        match response.status() {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                let body =
                    assert_refused(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
                assert!(body["message"].as_str().unwrap().contains("being checked"), "{body}");
                in_progress += 1;
            }
            other => panic!("{backend:?}: unexpected {other}"),
        }
    }
    assert!(in_progress > 0, "{backend:?}: eight logins raced for one place, none was refused");
    let left = app.count("SELECT COUNT(*) AS n FROM login_throttle WHERE pending <> 0").await;
    assert_eq!(left, 0, "{backend:?}: reservations left behind");
    app.stop().await;
}
