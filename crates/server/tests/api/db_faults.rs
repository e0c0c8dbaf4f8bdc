//! Database faults while serving (PostgreSQL): the pool exhausted, and the server's connections
//! killed with `pg_terminate_backend`, idle and in the middle of a request. Every request answers —
//! 503 with a reason, never a bare 500 and never later than the handler deadline — and the server
//! recovers by itself once the database serves again.
//!
//! How a request is held inside the database: a connection of the test's own takes
//! `LOCK TABLE users IN ACCESS EXCLUSIVE MODE` in an open transaction, so every statement of the
//! server that reads `users` (a login looks up its account) waits on that lock while holding one of
//! the server's pool connections. `pg_stat_activity` says when the server's connections wait, which
//! is the event the test waits for.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, TransactionTrait as _,
};
use serde_json::Value;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_refused, postgres_configured, spawn_app_with,
};

const POOL: u32 = 2;
const ACQUIRE_TIMEOUT_SECONDS: u32 = 1;
const HANDLER_TIMEOUT_SECONDS: u32 = 4;
/// How late an answer may be past the deadline that produces it: the time to send it.
const SLACK: Duration = Duration::from_millis(1500);

async fn spawn_small_pool() -> TestApp {
    spawn_app_with(Backend::Postgres, |s| {
        s.db_max_connections = POOL;
        s.db_acquire_timeout = ACQUIRE_TIMEOUT_SECONDS;
        s.handler_timeout = HANDLER_TIMEOUT_SECONDS;
    })
    .await
}

/// The test's own connection to the server's database, outside the server's pool.
async fn admin(app: &TestApp) -> DatabaseConnection {
    sea_orm::Database::connect(app.database_url()).await.unwrap()
}

/// An open transaction holding `users` locked against every other statement.
async fn lock_users(db: &DatabaseConnection) -> DatabaseTransaction {
    let lock = db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE users IN ACCESS EXCLUSIVE MODE").await.unwrap();
    lock
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Connections of this database waiting on a lock: the server's, held by [`lock_users`].
const WAITING_ON_THE_LOCK: &str = "SELECT count(*) AS n FROM pg_stat_activity \
     WHERE datname = current_database() AND wait_event_type = 'Lock'";

async fn wait_until_waiting_on_the_lock(db: &DatabaseConnection, n: i64) {
    for _ in 0..1000 {
        if scalar(db, WAITING_ON_THE_LOCK).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server's connections never waited on the lock ({n} expected)");
}

/// A login, sent in the background; it answers with its status, body and how long it took.
fn login_in_background(
    app: &TestApp,
    user: &TestUser,
) -> tokio::task::JoinHandle<(StatusCode, Value, Duration)> {
    let (url, user) = (app.url("/api/session/login"), user.clone());
    tokio::spawn(async move {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({"username": user.username, "password": user.password}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body, started.elapsed())
    })
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_database_unavailable_within_its_timeout_and_recovers() {
    if !postgres_configured(module_path!()) {
        return;
    }
    let app = spawn_small_pool().await;
    let user = app.register_user().await;
    let signed_in = app.session_login(&user).await;
    let db = admin(&app).await;
    let lock = lock_users(&db).await;

    // Every connection of the pool is taken by a login waiting on the lock.
    let held: Vec<_> = (0..POOL).map(|_| login_in_background(&app, &user)).collect();
    wait_until_waiting_on_the_lock(&db, i64::from(POOL)).await;

    // A request that needs the database waits for a connection as long as it may, no longer.
    for path in ["/readyz", "/api/session/me"] {
        let started = Instant::now();
        let response =
            signed_in.apply(reqwest::Client::new().get(app.url(path))).send().await.unwrap();
        let waited = started.elapsed();
        let retry_after = response.headers().get("retry-after").cloned();
        assert_refused(response, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable").await;
        assert_eq!(retry_after.as_ref().and_then(|v| v.to_str().ok()), Some("1"), "{path}");
        let timeout = Duration::from_secs(ACQUIRE_TIMEOUT_SECONDS.into());
        assert!(waited >= timeout && waited < timeout + SLACK, "{path} answered after {waited:?}");
    }
    // A login waits for its slot the same way; the process itself keeps answering.
    let started = Instant::now();
    let refused = app.try_session_login(&user).await;
    assert_refused(refused, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable").await;
    assert!(started.elapsed() < Duration::from_secs(HANDLER_TIMEOUT_SECONDS.into()));
    assert_eq!(app.get("/livez").await.status(), StatusCode::OK);

    // The held logins end at the handler deadline, with its reason.
    for login in held {
        let (status, body, took) = login.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["reason"], "deadline_exceeded", "{body}");
        assert!(took < Duration::from_secs(HANDLER_TIMEOUT_SECONDS.into()) + SLACK, "{took:?}");
    }

    // Once the database serves again, so does the server, without a restart.
    lock.rollback().await.unwrap();
    assert_eq!(app.session_me(&signed_in).await.status(), StatusCode::OK);
    let again = app.session_login(&user).await;
    assert_eq!(app.session_me(&again).await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    db.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn connections_killed_by_pg_terminate_backend_answer_503_and_the_pool_heals_itself() {
    if !postgres_configured(module_path!()) {
        return;
    }
    let app = spawn_small_pool().await;
    let user = app.register_user().await;
    let signed_in = app.session_login(&user).await;
    let db = admin(&app).await;
    let terminate_others = "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()";

    // Idle connections killed: the pool notices before handing one out, and opens new ones.
    assert_eq!(app.session_me(&signed_in).await.status(), StatusCode::OK);
    assert!(scalar(&db, terminate_others).await >= 1, "the server kept no connection open");
    for _ in 0..2 * POOL {
        assert_eq!(app.session_me(&signed_in).await.status(), StatusCode::OK);
    }

    // Connections killed in the middle of a statement: those requests answer 503 with a reason at
    // once (the client retries), not 500, and not at the deadline.
    let lock = lock_users(&db).await;
    let held: Vec<_> = (0..POOL).map(|_| login_in_background(&app, &user)).collect();
    wait_until_waiting_on_the_lock(&db, i64::from(POOL)).await;
    let killed = scalar(
        &db,
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await;
    assert_eq!(killed, i64::from(POOL));
    for login in held {
        let (status, body, took) = login.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["reason"], "database_unavailable", "{body}");
        assert!(took < Duration::from_secs(HANDLER_TIMEOUT_SECONDS.into()), "{took:?}");
    }
    lock.rollback().await.unwrap();

    // And the server serves again by itself: a new login, the earlier session, readiness.
    let again = app.session_login(&user).await;
    assert_eq!(app.session_me(&again).await.status(), StatusCode::OK);
    assert_eq!(app.session_me(&signed_in).await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    db.close().await.unwrap();
    app.stop().await;
}
