//! Server sessions in Redis (`--session-store redis://…`): the same endings as in the database,
//! shared by two instances, and a clear, bounded failure while Redis is away.
//!
//! They need `TEST_REDIS_URL` (`.ci/run` sets it whenever 127.0.0.1:6379 answers); without it each
//! says so on stderr and returns, like the PostgreSQL tests. Every test writes under a key prefix
//! of its own and deletes its keys at the end; the outage test runs a Redis of its own on its own
//! port, so the machine's Redis is never stopped.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::json;
use tokenlab_server::config::SessionStoreChoice;

use crate::helpers::{
    Backend, Credential, TestApp, TestUser, assert_refused, set_cookie, spawn_app_with,
};

fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("redis_sessions: NOT RUN — set TEST_REDIS_URL, e.g. redis://127.0.0.1:6379");
    }
    url
}

/// The test's own key prefix, and what the server under test needs to write under it.
struct Prefix(crate::redis_prefix::RedisPrefix);

impl Prefix {
    fn new(url: &str) -> Self {
        Self(crate::redis_prefix::RedisPrefix::new(url, "tokenlab-test"))
    }

    fn configure(&self) -> impl FnOnce(&mut tokenlab_server::Settings) + use<> {
        let (url, prefix) = (self.0.url.clone(), self.0.prefix.clone());
        move |settings| {
            settings.session_store = SessionStoreChoice::Redis(url);
            settings.redis_prefix = prefix;
        }
    }

    /// Every key under the prefix, with its value (strings and hashes as text).
    fn keys(&self) -> Vec<(String, String)> {
        let mut connection = self.0.connection().unwrap();
        self.0
            .keys("*")
            .into_iter()
            .map(|key| {
                let kind: String = redis::cmd("TYPE").arg(&key).query(&mut connection).unwrap();
                let value = if kind == "hash" {
                    let all: Vec<String> =
                        redis::cmd("HGETALL").arg(&key).query(&mut connection).unwrap();
                    all.join(" ")
                } else {
                    redis::cmd("GET").arg(&key).query(&mut connection).unwrap()
                };
                (key, value)
            })
            .collect()
    }

    fn sessions(&self) -> usize {
        self.0.sessions()
    }
}

async fn spawn_on_redis(prefix: &Prefix) -> TestApp {
    spawn_app_with(Backend::Sqlite, prefix.configure()).await
}

/// Another instance on `a`'s database and Redis prefix, answering at `a`'s public address.
async fn second_on_redis(a: &TestApp, prefix: &Prefix) -> TestApp {
    let public_url = a.base.clone();
    let configure = prefix.configure();
    a.second_instance_with(move |s| {
        configure(s);
        s.public_url = Some(public_url);
    })
    .await
}

fn cookie_value(who: &Credential) -> String {
    who.session_cookie().to_owned()
}

#[tokio::test]
async fn sessions_live_in_redis_hashed_and_a_logout_sticks_on_every_instance() {
    let Some(url) = redis_url() else { return };
    let prefix = Prefix::new(&url);
    let a = spawn_on_redis(&prefix).await;
    let b = second_on_redis(&a, &prefix).await;

    let alice = a.session_login(&TestUser::alice()).await;
    assert_eq!(a.session_me(&alice).await.status(), StatusCode::OK);
    assert_eq!(b.session_me(&alice).await.status(), StatusCode::OK, "B reads A's session");
    assert_eq!(a.count("SELECT COUNT(*) AS n FROM sessions").await, 0, "none in the database");
    assert_eq!(prefix.sessions(), 1);
    let cookie = cookie_value(&alice);
    for (key, value) in prefix.keys() {
        assert!(!key.contains(&cookie) && !value.contains(&cookie), "{key} holds the id in clear");
    }

    // A request held on A past a logout on B must not write the session back when it finishes.
    a.advance_clock(60).await;
    let held = alice
        .apply(Client::new().post(a.url("/api/orders")))
        .header("idempotency-key", "held-over-logout")
        .header("x-demo-delay-ms", "1500")
        .json(&json!({"item": "matcha", "quantity": 1}))
        .send();
    let held = tokio::spawn(held);
    a.wait_for_count(
        "SELECT COUNT(*) AS n FROM idempotency_keys WHERE key = 'held-over-logout'",
        1,
    )
    .await;
    let logout = alice.apply(Client::new().post(b.url("/api/session/logout"))).send().await;
    assert_eq!(logout.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(held.await.unwrap().unwrap().status(), StatusCode::CREATED);
    for app in [&a, &b] {
        assert_refused(app.session_me(&alice).await, StatusCode::UNAUTHORIZED, "not_logged_in")
            .await;
    }
    assert_eq!(prefix.sessions(), 0, "no session came back: {:?}", prefix.keys());
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn the_sessions_list_sign_out_everywhere_and_devices_work_on_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = Prefix::new(&url);
    let app = spawn_on_redis(&prefix).await;
    let alice = TestUser::alice();
    let laptop = app.session_login(&alice).await;
    let phone = app.session_login(&alice).await;
    let tablet = app.device_login(&alice, "tablet-1", "hardened").await.credential;
    assert_eq!(app.device_me(&tablet).await.status(), StatusCode::OK);

    let list: serde_json::Value = app.get_as("/api/sessions", &laptop).await.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    let of = |scheme: &str| sessions.iter().filter(|e| e["scheme"] == scheme).count();
    assert_eq!((of("session"), of("device")), (2, 1), "{list}");

    // The demo's "expire every session": the device re-attaches from the database.
    let expired = app.post_json("/api/demo/sessions/expire", &json!({})).await;
    assert_eq!(expired.status(), StatusCode::OK);
    assert_refused(app.session_me(&phone).await, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    assert_eq!(app.device_me(&tablet).await.status(), StatusCode::OK, "re-attached");
    let laptop = app.session_login(&alice).await;

    // Sign out everywhere from the laptop, keeping it: the tablet's session and device end.
    let done: serde_json::Value = laptop
        .apply(Client::new().post(app.url("/api/sessions/revoke-all")))
        .json(&json!({"keep_current": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["ended"]["devices"], 1, "{done}");
    assert_eq!(app.session_me(&laptop).await.status(), StatusCode::OK, "kept");
    assert_eq!(app.device_me(&tablet).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(prefix.sessions(), 1, "only the laptop's: {:?}", prefix.keys());
    // The index lists only what is alive.
    let index: Vec<_> =
        prefix.keys().into_iter().filter(|(k, _)| k.contains(":user-sessions:")).collect();
    assert_eq!(index.len(), 1, "{index:?}");
    assert_eq!(index[0].1.matches("handle").count(), 1, "{index:?}");

    // A password change ends every other sign-in; the caller's own stays (as on the database).
    let other = app.session_login(&alice).await;
    assert_eq!(prefix.sessions(), 2);
    let changed = laptop
        .apply(Client::new().post(app.url("/api/accounts/password")))
        .json(&json!({
            "username": "alice",
            "current_password": alice.password,
            "new_password": "a brand new passphrase",
        }))
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success(), "{}", changed.status());
    assert_refused(app.session_me(&other).await, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    assert_eq!(app.session_me(&laptop).await.status(), StatusCode::OK);
    assert_eq!(prefix.sessions(), 1, "{:?}", prefix.keys());
    app.stop().await;
}

/// A Redis of the test's own on a free port, stopped and started again by the test.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start_on(port: u16) -> Self {
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--bind", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let url = format!("redis://127.0.0.1:{port}");
        for _ in 0..500 {
            if redis::Client::open(url.as_str()).and_then(|c| c.get_connection()).is_ok() {
                return Self { port, child: Some(child) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on {port} never answered");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn with_redis_away_sessions_fail_fast_tokens_keep_working_and_all_recovers() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = OwnRedis::start_on(port);
    let prefix = Prefix::new(&format!("redis://127.0.0.1:{port}"));
    let app = spawn_on_redis(&prefix).await;
    let alice = TestUser::alice();
    let session = app.session_login(&alice).await;
    let tokens = app.password_grant(&alice).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    redis.stop();
    let asked = Instant::now();
    let refused = app.session_me(&session).await;
    let waited = asked.elapsed();
    eprintln!("with Redis away, GET /api/session/me was answered after {waited:?}");
    assert_refused(refused, StatusCode::SERVICE_UNAVAILABLE, "session_store_unavailable").await;
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    let ready = app.get("/readyz").await;
    assert_refused(ready, StatusCode::SERVICE_UNAVAILABLE, "session_store_unavailable").await;
    let login = app.try_session_login(&alice).await;
    assert_refused(login, StatusCode::SERVICE_UNAVAILABLE, "session_store_unavailable").await;
    assert_eq!(app.jwt_me(&access).await.status(), StatusCode::OK, "tokens need no session");

    // Redis back (empty: it keeps nothing on disk): new sessions work without a restart.
    redis = OwnRedis::start_on(redis.port);
    let back = Instant::now();
    let again = loop {
        let response = app.try_session_login(&alice).await;
        if response.status() == StatusCode::OK {
            break back.elapsed();
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(back.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("logins worked again {again:?} after Redis came back");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let fresh = app.session_login(&alice).await;
    assert_eq!(app.session_me(&fresh).await.status(), StatusCode::OK);
    app.stop().await;
    drop(redis);
}

#[tokio::test]
async fn a_save_that_meets_redis_away_after_the_handler_says_retry_and_the_retry_is_safe() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = OwnRedis::start_on(port);
    let prefix = Prefix::new(&format!("redis://127.0.0.1:{port}"));
    let app = spawn_on_redis(&prefix).await;
    let alice = TestUser::alice();
    let session = app.session_login(&alice).await;
    // A minute on, the request's activity is due to be written back: its session is saved after
    // the handler, and that save is what meets the outage.
    app.advance_clock(61).await;
    let held = session
        .apply(Client::new().post(app.url("/api/orders")))
        .header("idempotency-key", "save-meets-outage")
        .header("x-demo-delay-ms", "1000")
        .json(&json!({"item": "matcha", "quantity": 1}))
        .send();
    let held = tokio::spawn(held);
    // The key is claimed once the request has loaded its session and entered the handler.
    app.wait_for_count("SELECT COUNT(*) AS n FROM idempotency_keys", 1).await;
    redis.stop();
    let answer = held.await.unwrap().unwrap();
    // Not a bare 500: the order was made, but the client cannot know that, and retrying (with the
    // same key) is what helps.
    assert_refused(answer, StatusCode::SERVICE_UNAVAILABLE, "session_store_unavailable").await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders").await, 1);

    // Redis back (empty): the client signs in again and retries with its key: the order it could
    // not be told about comes back, and no second one is made.
    redis = OwnRedis::start_on(redis.port);
    let back = Instant::now();
    let again = loop {
        let response = app.try_session_login(&alice).await;
        if response.status() == StatusCode::OK {
            break Credential::Session(set_cookie(&response, "tl_session").unwrap());
        }
        assert!(back.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let retry = again
        .apply(Client::new().post(app.url("/api/orders")))
        .header("idempotency-key", "save-meets-outage")
        .json(&json!({"item": "matcha", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders").await, 1);
    app.stop().await;
    drop(redis);
}

#[tokio::test]
async fn a_re_attach_held_across_a_revocation_leaves_no_session_in_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = Prefix::new(&url);
    let app = spawn_on_redis(&prefix).await;
    crate::signout::re_attach_held_across_a_revocation(&app).await;
    // The sign-in that revoked the phone is the only session left.
    assert_eq!(prefix.sessions(), 1, "{:?}", prefix.keys());
    app.stop().await;
}

/// With sessions in Redis, the DPoP replay store is there too: a proof spent at one instance is
/// refused at the other, the database holds none, and Redis forgets it once its `iat` is out of
/// the window.
#[tokio::test]
async fn dpop_proofs_are_spent_in_redis_for_every_instance() {
    use crate::dpop::DpopClient;
    use crate::dpop_client::ProofKey;

    let Some(url) = redis_url() else { return };
    let prefix = Prefix::new(&url);
    let a = spawn_on_redis(&prefix).await;
    let b = second_on_redis(&a, &prefix).await;
    let mut client = DpopClient::new(&a, ProofKey::p256());
    let tokens = client.login(&TestUser::alice()).await;
    let token = tokens["access_token"].as_str().unwrap();

    let (on_a, proof) = client.get_request("/api/jwt/me", token);
    assert_eq!(on_a.send().await.unwrap().status(), StatusCode::OK);
    let on_b = Client::new()
        .get(b.url("/api/jwt/me"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_refused(on_b, StatusCode::UNAUTHORIZED, "dpop_proof_replayed").await;

    assert_eq!(a.count("SELECT COUNT(*) AS n FROM dpop_proofs_seen").await, 0);
    let spent = prefix.0.keys("dpop-proof:*");
    // The login's proof and the resource's.
    assert_eq!(spent.len(), 2, "{spent:?}");
    let mut connection = prefix.0.connection().unwrap();
    for key in spent {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut connection).unwrap();
        assert!((1..=60).contains(&ttl), "{key} lives {ttl} s");
    }
    b.stop().await;
    a.stop().await;
}
