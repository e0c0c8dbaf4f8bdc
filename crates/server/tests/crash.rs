//! The crash harness: a real `tokenlab` process serving a stream of orders (form tokens and
//! `Idempotency-Key`s) and refreshes is killed with SIGKILL at random moments and started again,
//! over and over; then what the database holds is checked against what the clients were told.
//!
//! - every order a client was acknowledged, and every order a client's retry was told about,
//!   exists exactly once, and nothing else exists;
//! - no refresh family has more than one live token, and the chain a client followed through the
//!   crashes is never taken for theft;
//! - no idempotency key is left "in flight": once its lease lapses, a retry with the key finishes
//!   it, with exactly one order;
//! - the server starts cleanly every time.
//!
//! `just test` runs it on SQLite with 20 kills. `just crash` runs 200 on PostgreSQL
//! (`TOKENLAB_CRASH_BACKEND=postgres`, with `TEST_DATABASE_URL`); `TOKENLAB_CRASH_KILLS` sets the
//! number and `TOKENLAB_CRASH_SEED` replays a run's kill moments (each run prints its seed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

#[path = "support/scratch_database.rs"]
mod scratch_database;
use scratch_database::ScratchDatabase;

/// xorshift64*: the kill moments only need to differ from run to run and replay from a seed.
struct Moments(u64);

impl Moments {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A delay in `low..high` milliseconds.
    fn between(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low))
    }
}

/// The database the runs share: a SQLite file, or with `TOKENLAB_CRASH_BACKEND=postgres` a
/// PostgreSQL database of its own; removed at the end.
struct Database {
    url: String,
    _postgres: Option<ScratchDatabase>,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    async fn create() -> Database {
        match std::env::var("TOKENLAB_CRASH_BACKEND").as_deref() {
            Ok("postgres") => {
                let admin_url = std::env::var("TEST_DATABASE_URL")
                    .expect("TOKENLAB_CRASH_BACKEND=postgres needs TEST_DATABASE_URL");
                let scratch = ScratchDatabase::create(&admin_url, "tokenlab_crash").await;
                Database { url: scratch.url.clone(), _postgres: Some(scratch), _dir: None }
            }
            Ok("sqlite") | Err(_) => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("crash.db").display());
                Database { url, _postgres: None, _dir: Some(dir) }
            }
            Ok(other) => panic!("TOKENLAB_CRASH_BACKEND={other}: sqlite or postgres"),
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        scratch_database::count(&self.url, sql).await
    }
}

/// One `tokenlab serve` process.
struct Server {
    base: String,
    child: Child,
}

/// What the servers logged at `error` (RUST_LOG=error), across every start.
static LOGGED_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Server {
    /// Starts the server and waits until it listens: a start that fails or hangs fails the run.
    fn start(database: &Database, site: &std::path::Path) -> Server {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokenlab"))
            .args(["serve", "--profile", "demo", "--bind", "127.0.0.1:0"])
            .args(["--database-url", &database.url, "--site-root"])
            .arg(site)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tokenlab binary starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        // Whatever the server logs at `error` is a fault the run reports at the end.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("server: {line}");
                LOGGED_ERRORS.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.strip_prefix("listening on ") {
                        break at.trim().to_owned();
                    }
                }
                _ => {
                    let status = child.wait();
                    panic!("the server exited before listening: {status:?}");
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        assert!(started.elapsed() < Duration::from_secs(30), "start took {:?}", started.elapsed());
        Server { base, child }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the clients were told, and what they still owe a retry.
#[derive(Default)]
struct Ledger {
    /// Each submission (an idempotency key, or a form token) and the order it is known to have
    /// made, once an answer said so.
    orders: BTreeMap<String, Option<i64>>,
    /// Form tokens whose submission got no answer: retried after the restart.
    unanswered_tokens: Vec<String>,
    /// Keys whose submission got no answer: retried at the end, once their leases have lapsed.
    unanswered_keys: Vec<String>,
    next: u64,
}

/// The client's end of the refresh chain.
struct Chain {
    token: String,
    rotations: u64,
    repeats: u64,
}

async fn place(
    http: &Client,
    server: &str,
    cookie: &str,
    body: Value,
    key: Option<&str>,
) -> Option<(StatusCode, Value)> {
    let mut request =
        http.post(format!("{server}/api/orders")).header("cookie", cookie).json(&body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.ok()?;
    let status = response.status();
    Some((status, response.json().await.ok()?))
}

/// The order an answer names: the one made, or the one a spent form token made.
fn named_order(status: StatusCode, body: &Value) -> Option<i64> {
    match status {
        StatusCode::CREATED => body["order"]["id"].as_i64(),
        StatusCode::CONFLICT if body["reason"] == "duplicate_submit" => {
            body["original_order_id"].as_i64()
        }
        _ => None,
    }
}

/// One client submitting orders until the server dies under it.
async fn order_stream(http: Client, server: String, cookie: String, ledger: Arc<Mutex<Ledger>>) {
    loop {
        let (n, by_key) = {
            let mut ledger = ledger.lock().unwrap();
            ledger.next += 1;
            (ledger.next, ledger.next.is_multiple_of(2))
        };
        if by_key {
            let key = format!("crash-key-{n}");
            ledger.lock().unwrap().orders.insert(key.clone(), None);
            let body = json!({"item": "crash", "quantity": 1});
            match place(&http, &server, &cookie, body, Some(&key)).await {
                Some((status, body)) => {
                    let id = named_order(status, &body);
                    assert!(id.is_some(), "{key}: {status} {body}");
                    ledger.lock().unwrap().orders.insert(key, id);
                }
                None => {
                    ledger.lock().unwrap().unanswered_keys.push(key);
                    return;
                }
            }
        } else {
            let Ok(response) = http
                .get(format!("{server}/api/orders/form-token"))
                .header("cookie", &cookie)
                .send()
                .await
            else {
                return;
            };
            let Ok(body) = response.json::<Value>().await else { return };
            let token = body["form_token"].as_str().unwrap().to_owned();
            ledger.lock().unwrap().orders.insert(token.clone(), None);
            let body = json!({"item": "crash", "quantity": 1, "form_token": token});
            match place(&http, &server, &cookie, body, None).await {
                Some((status, body)) => {
                    let id = named_order(status, &body);
                    assert!(id.is_some(), "form token: {status} {body}");
                    ledger.lock().unwrap().orders.insert(token, id);
                }
                None => {
                    ledger.lock().unwrap().unanswered_tokens.push(token);
                    return;
                }
            }
        }
    }
}

/// Refreshes `token` on `server`: the child and `X-Tokenlab-Refresh`, or `None` without an answer.
async fn refresh(http: &Client, server: &str, token: &str) -> Option<(String, String)> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let response = http.post(format!("{server}/api/oauth/token")).form(&form).send().await.ok()?;
    let status = response.status();
    let outcome =
        response.headers().get("x-tokenlab-refresh").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.ok()?;
    assert_eq!(status, StatusCode::OK, "a refresh of the chain's own token: {body}");
    Some((body["refresh_token"].as_str()?.to_owned(), outcome?))
}

/// The refresh chain, one refresh after another until the server dies under it.
async fn refresh_stream(http: Client, server: String, chain: Arc<Mutex<Chain>>) {
    loop {
        let token = chain.lock().unwrap().token.clone();
        let Some((child, outcome)) = refresh(&http, &server, &token).await else { return };
        let mut chain = chain.lock().unwrap();
        match outcome.as_str() {
            "rotated" => chain.rotations += 1,
            "repeated" => chain.repeats += 1,
            other => panic!("X-Tokenlab-Refresh: {other}"),
        }
        chain.token = child;
    }
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_acknowledged_and_doubles_nothing() {
    let kills: u32 =
        std::env::var("TOKENLAB_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(20);
    let seed = std::env::var("TOKENLAB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
                | 1
        });
    eprintln!("crash harness: {kills} kills, TOKENLAB_CRASH_SEED={seed}");
    let mut moments = Moments(seed);
    let database = Database::create().await;
    let site = tempfile::tempdir().unwrap();
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    let server = Server::start(&database, site.path());
    let credentials = json!({"username": "alice", "password": "wonderland-demo"});
    let login =
        http.post(server.url("/api/session/login")).json(&credentials).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tl_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")];
    let grant: Value = http
        .post(server.url("/api/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chain = Arc::new(Mutex::new(Chain {
        token: grant["refresh_token"].as_str().unwrap().to_owned(),
        rotations: 0,
        repeats: 0,
    }));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = Some(server);
    for kill in 0..kills {
        let running = server.take().unwrap_or_else(|| Server::start(&database, site.path()));
        // What the last kill left unanswered, first: a form token's retry is told the order its
        // first submission made, or makes it; the chain's token is refreshed again, inside the
        // grace window if the server had rotated it before dying.
        let tokens = std::mem::take(&mut ledger.lock().unwrap().unanswered_tokens);
        for token in tokens {
            let body = json!({"item": "crash", "quantity": 1, "form_token": token});
            let (status, body) = place(&http, &running.base, &cookie, body, None).await.unwrap();
            let id = named_order(status, &body);
            assert!(id.is_some(), "form token retried after kill {kill}: {status} {body}");
            ledger.lock().unwrap().orders.insert(token, id);
        }
        let streams: Vec<_> = (0..3)
            .map(|_| {
                tokio::spawn(order_stream(
                    http.clone(),
                    running.base.clone(),
                    cookie.clone(),
                    Arc::clone(&ledger),
                ))
            })
            .chain([tokio::spawn(refresh_stream(
                http.clone(),
                running.base.clone(),
                Arc::clone(&chain),
            ))])
            .collect();
        // The random moment is the point of the harness: no event to wait for instead.
        tokio::time::sleep(moments.between(20, 250)).await;
        running.kill();
        for stream in streams {
            stream.await.unwrap();
        }
    }

    // Once more, for the checks. The keys whose answer never came are retried after their lease
    // (60 s on the demo clock) has lapsed: each makes its order exactly once, or names the one it
    // made.
    let server = Server::start(&database, site.path());
    // The chain first, inside the grace window: the last kill may have fallen between a rotation's
    // commit and its answer, and the clock is about to move past that window.
    {
        let token = chain.lock().unwrap().token.clone();
        let (child, outcome) = refresh(&http, &server.base, &token).await.expect("an answer");
        let mut chain = chain.lock().unwrap();
        match outcome.as_str() {
            "rotated" => chain.rotations += 1,
            _ => chain.repeats += 1,
        }
        chain.token = child;
    }
    let moved = http.post(server.url("/api/demo/clock")).json(&json!({"advance_seconds": 61}));
    assert_eq!(moved.send().await.unwrap().status(), StatusCode::OK);
    let keys = std::mem::take(&mut ledger.lock().unwrap().unanswered_keys);
    let tokens = std::mem::take(&mut ledger.lock().unwrap().unanswered_tokens);
    let retried = keys.len() + tokens.len();
    for key in keys {
        let body = json!({"item": "crash", "quantity": 1});
        let (status, body) = place(&http, &server.base, &cookie, body, Some(&key)).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{key} after its lease: {body}");
        ledger.lock().unwrap().orders.insert(key, named_order(status, &body));
    }
    for token in tokens {
        let body = json!({"item": "crash", "quantity": 1, "form_token": token});
        let (status, body) = place(&http, &server.base, &cookie, body, None).await.unwrap();
        ledger.lock().unwrap().orders.insert(token, named_order(status, &body));
    }

    let ids: Vec<i64> = ledger
        .lock()
        .unwrap()
        .orders
        .values()
        .map(|id| id.expect("every submission settled"))
        .collect();
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    let stored = database.count("SELECT COUNT(*) AS n FROM orders").await;
    let live_twice = database
        .count(
            "SELECT COUNT(*) AS n FROM (SELECT family_id FROM refresh_tokens \
             WHERE rotated_at IS NULL GROUP BY family_id HAVING COUNT(*) > 1) AS doubled",
        )
        .await;
    let revoked = database
        .count("SELECT COUNT(*) AS n FROM refresh_families WHERE revoked_at IS NOT NULL")
        .await;
    let in_flight =
        database.count("SELECT COUNT(*) AS n FROM idempotency_keys WHERE finished = false").await;
    let (rotations, repeats, last) = {
        let chain = chain.lock().unwrap();
        (chain.rotations, chain.repeats, chain.token.clone())
    };
    eprintln!(
        "crash harness: {kills} kills; {} submissions ({retried} retried at the end), {} orders stored; \
         refresh chain {} rotations, {} repeats after a kill",
        ids.len(),
        stored,
        rotations,
        repeats
    );
    assert_eq!(distinct.len(), ids.len(), "two submissions named one order");
    assert_eq!(stored, i64::try_from(ids.len()).unwrap(), "one order per submission, no other");
    assert_eq!(live_twice, 0, "a refresh family with two live tokens");
    assert_eq!(revoked, 0, "the chain was taken for theft");
    assert_eq!(in_flight, 0, "an idempotency key left in flight");
    assert!(refresh(&http, &server.base, &last).await.is_some(), "the chain still works");
    server.kill();
    let errors = LOGGED_ERRORS.lock().unwrap();
    assert!(errors.is_empty(), "the servers logged errors: {errors:#?}");
}
