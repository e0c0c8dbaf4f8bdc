//! Two real `tokenlab` processes, `A` and `B`, on one fresh PostgreSQL database with sessions in
//! Redis, addressed directly and, for the login ceiling, through nginx as `just stack` runs it: the
//! guarantees every scheme states, held across instances.
//!
//! Needs `TEST_DATABASE_URL` (PostgreSQL) and `TEST_REDIS_URL`; `.ci/run` sets both when the local
//! servers answer. Without them each test says so on stderr and returns. With them, the nginx pass
//! needs Debian's nginx too (`just setup-test` installs it then). Every figure is printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

#[path = "support/redis_prefix.rs"]
mod redis_prefix;
#[path = "support/scratch_database.rs"]
mod scratch_database;
use redis_prefix::RedisPrefix;
use scratch_database::ScratchDatabase;

/// A database and a Redis key prefix of the test's own, removed when dropped.
struct Stores {
    database: ScratchDatabase,
    redis: RedisPrefix,
}

impl Stores {
    async fn create(test: &str) -> Option<Self> {
        let (Ok(admin_url), Ok(redis_url)) =
            (std::env::var("TEST_DATABASE_URL"), std::env::var("TEST_REDIS_URL"))
        else {
            eprintln!("{test}: NOT RUN — set TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL");
            return None;
        };
        let database = ScratchDatabase::create(&admin_url, "tokenlab_cross").await;
        let redis = RedisPrefix::new(&redis_url, "tokenlab-cross");
        Some(Self { database, redis })
    }

    /// Polls the database until `sql` (`SELECT COUNT(*) AS n …`) counts `n`.
    async fn wait_for_count(&self, sql: &str, n: i64) {
        for _ in 0..500 {
            if scratch_database::count(&self.database.url, sql).await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never counted {n}: {sql}");
    }
}

/// One `tokenlab serve` process; killed (SIGKILL) when dropped.
struct Instance {
    name: &'static str,
    base: String,
    child: Child,
}

impl Instance {
    fn start(name: &'static str, stores: &Stores) -> Self {
        Self::start_with(name, stores, &[])
    }

    fn start_with(name: &'static str, stores: &Stores, extra: &[&str]) -> Self {
        let site = std::env::temp_dir().join("tokenlab-cross-instance-site");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokenlab"))
            .args(["serve", "--profile", "demo", "--bind", "127.0.0.1:0", "--instance", name])
            .args(["--database-url", &stores.database.url, "--session-store", &stores.redis.url])
            .args(["--redis-prefix", &stores.redis.prefix, "--site-root"])
            .arg(&site)
            // Both answer at one public address, as behind a load balancer (the tokens' issuer).
            .args(["--public-url", "http://lab.test"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the tokenlab binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("instance {name} exited before listening");
            };
            if let Some(at) = line.strip_prefix("listening on ") {
                break at.trim().to_owned();
            }
        };
        // Keep reading so that the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { name, base, child }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn host_port(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian's nginx in front of the instances, from `deploy/nginx.conf.template` as `just stack`
/// fills it in: the load balancer the suite's smoke pass goes through. Stopped when dropped.
struct Nginx {
    base: String,
    child: Child,
    _run_dir: tempfile::TempDir,
}

impl Nginx {
    fn start(instances: &[&Instance]) -> Self {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("the cross-instance suite needs nginx: `just setup-stack` installs Debian's");
        let run_dir = tempfile::Builder::new().prefix("tokenlab-cross-nginx-").tempdir().unwrap();
        // nginx's workers run as nobody when the master is root, and must reach the temp
        // directories nginx creates in here.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A port nobody holds now; nginx binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let servers = instances
            .iter()
            .map(|i| format!("        server {};  # instance {}", i.host_port(), i.name))
            .collect::<Vec<_>>()
            .join("\n");
        let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/nginx.conf.template");
        let config = std::fs::read_to_string(template)
            .unwrap()
            .replace("@UPSTREAM_SERVERS@", &servers)
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@RUN_DIR@", run_dir.path().to_str().unwrap());
        assert!(!config.contains("@RUN_DIR@") && !config.contains("@LISTEN@"));
        let config_path = run_dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(run_dir.path())
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(15), "nginx never listened on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { base: format!("http://127.0.0.1:{port}"), child, _run_dir: run_dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's master takes its workers down with it.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

async fn session_login(http: &Client, on: &Instance) -> String {
    let response = http
        .post(on.url("/api/session/login"))
        .json(&json!({"username": "alice", "password": "wonderland-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login on {}", on.name);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tl_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn password_grant(http: &Client, on: &Instance) -> Value {
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")];
    http.post(on.url("/api/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap()
}

/// `n` requests at once, the even ones to `a` and the odd ones to `b` (what a round-robin load
/// balancer does); each answer's status and JSON body.
async fn split_over(
    (a, b): (&Instance, &Instance),
    n: usize,
    request: impl Fn(&Instance) -> reqwest::RequestBuilder,
) -> Vec<(StatusCode, Value)> {
    join_all((0..n).map(|i| {
        let request = request(if i % 2 == 0 { a } else { b });
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    }))
    .await
}

/// `GET path` on `on` with the session `cookie`, as JSON.
async fn get_with_cookie(http: &Client, on: &Instance, path: &str, cookie: &str) -> Value {
    let response = http.get(on.url(path)).header("cookie", cookie).send().await.unwrap();
    response.json().await.unwrap()
}

fn count(statuses: &[(StatusCode, Value)], status: StatusCode) -> usize {
    statuses.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test]
async fn exactly_once_across_instances_with_a_form_token_and_an_idempotency_key() {
    let Some(stores) = Stores::create("exactly_once_across_instances").await else { return };
    let (a, b) = (Instance::start("A", &stores), Instance::start("B", &stores));
    let http = Client::new();
    let cookie = session_login(&http, &a).await;

    let token = get_with_cookie(&http, &b, "/api/orders/form-token", &cookie).await;
    let body = json!({"item": "matcha", "quantity": 1, "form_token": token["form_token"]});
    let answers = split_over((&a, &b), 200, |on| {
        http.post(on.url("/api/orders")).header("cookie", &cookie).json(&body)
    })
    .await;
    let (created, duplicate) =
        (count(&answers, StatusCode::CREATED), count(&answers, StatusCode::CONFLICT));
    let server_errors = answers.iter().filter(|(s, _)| s.is_server_error()).count();
    eprintln!(
        "one form token, 200 submissions over A and B: {created} created, {duplicate} duplicate, {server_errors} × 5xx"
    );
    assert_eq!((created, duplicate, server_errors), (1, 199, 0), "{answers:?}");
    let original =
        answers.iter().find(|(s, _)| *s == StatusCode::CREATED).unwrap().1["order"]["id"].clone();
    assert!(
        answers.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).all(|(_, b)| {
            b["reason"] == "duplicate_submit" && b["original_order_id"] == original
        })
    );

    let body = json!({"item": "sencha", "quantity": 2});
    let answers = split_over((&a, &b), 200, |on| {
        http.post(on.url("/api/orders"))
            .header("cookie", &cookie)
            .header("idempotency-key", "cross-instance-key")
            .json(&body)
    })
    .await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect::<Vec<_>>();
    let in_progress = count(&answers, StatusCode::CONFLICT);
    let server_errors = answers.iter().filter(|(s, _)| s.is_server_error()).count();
    eprintln!(
        "one Idempotency-Key, 200 submissions over A and B: {} answered 201 (the order or its replay), {in_progress} still in progress, {server_errors} × 5xx",
        created.len()
    );
    assert_eq!(server_errors, 0, "{answers:?}");
    assert!(created.iter().all(|(_, body)| *body == created[0].1), "replays are identical");
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CONFLICT)
            .all(|(_, b)| b["reason"] == "idempotency_key_in_use"),
        "{answers:?}"
    );
    assert_eq!(created.len() + in_progress, 200, "{answers:?}");
    let orders = get_with_cookie(&http, &a, "/api/orders", &cookie).await;
    let orders = orders["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2, "one order per token and per key: {orders:?}");
}

#[tokio::test]
async fn one_refresh_token_rotates_once_across_instances_and_a_late_replay_revokes_everywhere() {
    let Some(stores) = Stores::create("one_refresh_token_rotates_once").await else { return };
    let (a, b) = (Instance::start("A", &stores), Instance::start("B", &stores));
    let http = Client::new();
    let parent = password_grant(&http, &a).await["refresh_token"].as_str().unwrap().to_owned();
    let answers = split_over((&a, &b), 50, |on| {
        http.post(on.url("/api/oauth/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", parent.as_str())])
    })
    .await;
    let children: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b["refresh_token"].as_str().unwrap().to_owned())
        .collect();
    let refused = answers.iter().filter(|(s, _)| !s.is_success()).count();
    eprintln!(
        "50 refreshes of one token over A and B: {} distinct children, {refused} refused",
        children.len()
    );
    assert_eq!((children.len(), refused), (1, 0), "{answers:?}");
    let child = children.into_iter().next().unwrap();

    // The grace window passes on every instance's clock (moved on A, seen by B); the parent
    // replayed on B is theft, and the family dies on A too.
    let moved = http.post(a.url("/api/demo/clock")).json(&json!({"advance_seconds": 11})).send();
    assert_eq!(moved.await.unwrap().status(), StatusCode::OK);
    // Once A has answered, B judges by the moved clock too.
    let clock: Value =
        http.get(b.url("/api/demo/clock")).send().await.unwrap().json().await.unwrap();
    assert_eq!(clock["offset_seconds"], 11, "B is on A's clock: {clock}");
    let replay = http
        .post(b.url("/api/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", parent.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let on_a = http
        .post(a.url("/api/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", child.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = on_a.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "the child dies with its family on A: {body}");
}

#[tokio::test]
async fn a_logout_on_a_holds_against_a_request_held_on_b_and_sign_out_reaches_b_within_a_second() {
    let Some(stores) = Stores::create("endings_across_instances").await else { return };
    let (a, b) = (Instance::start("A", &stores), Instance::start("B", &stores));
    let http = Client::new();
    let cookie = session_login(&http, &a).await;
    // A minute on (the write-back step): the held request's activity slides the idle expiry, so
    // its session is due to be saved when it finishes — the save that must find it gone.
    let moved = http.post(a.url("/api/demo/clock")).json(&json!({"advance_seconds": 60}));
    assert_eq!(moved.send().await.unwrap().status(), StatusCode::OK);
    let held = http
        .post(b.url("/api/orders"))
        .header("cookie", &cookie)
        .header("idempotency-key", "held-over-logout")
        .header("x-demo-delay-ms", "1500")
        .json(&json!({"item": "matcha", "quantity": 1}))
        .send();
    let held = tokio::spawn(held);
    // B has authenticated the request once it has claimed its key; then the logout comes.
    stores.wait_for_count("SELECT COUNT(*) AS n FROM idempotency_keys", 1).await;
    let logout = http.post(a.url("/api/session/logout")).header("cookie", &cookie).send().await;
    assert_eq!(logout.unwrap().status(), StatusCode::NO_CONTENT);
    let held = held.await.unwrap().unwrap();
    eprintln!("the request held on B over A's logout finished with {}", held.status());
    for on in [&a, &b] {
        let me = http.get(on.url("/api/session/me")).header("cookie", &cookie).send().await;
        assert_eq!(me.unwrap().status(), StatusCode::UNAUTHORIZED, "on {}", on.name);
    }
    assert_eq!(stores.redis.sessions(), 0, "the held request wrote no session back");

    let tokens = password_grant(&http, &a).await;
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let me = http.get(b.url("/api/jwt/me")).header("authorization", &bearer).send().await;
    assert_eq!(me.unwrap().status(), StatusCode::OK);
    let ended = http
        .post(a.url("/api/sessions/revoke-all"))
        .header("authorization", &bearer)
        .json(&json!({"keep_current": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    let signed_out = Instant::now();
    let refused_after = loop {
        let me = http.get(b.url("/api/jwt/me")).header("authorization", &bearer).send().await;
        if me.unwrap().status() == StatusCode::UNAUTHORIZED {
            break signed_out.elapsed();
        }
        assert!(signed_out.elapsed() < Duration::from_secs(5), "B never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("B refused the signed-out access token {refused_after:?} after A ended the login");
    assert!(refused_after < Duration::from_secs(1), "{refused_after:?}");
}

/// SIGKILL: the process ends at once, nothing drained or flushed.
fn sigkill(pid: u32) {
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status();
    assert!(killed.is_ok_and(|status| status.success()), "kill -9 {pid}");
}

/// `POST /api/orders` with an Idempotency-Key on `on`: the status, or `None` when no answer came.
async fn order_with_key(
    http: &Client,
    on: &Instance,
    cookie: &str,
    key: &str,
) -> Option<StatusCode> {
    let request = http
        .post(on.url("/api/orders"))
        .header("cookie", cookie)
        .header("idempotency-key", key)
        .json(&json!({"item": "matcha", "quantity": 1}));
    request.send().await.ok().map(|r| r.status())
}

/// A refresh of `token` on `on`: the child and `X-Tokenlab-Refresh`, or `None` when no answer came.
async fn refresh_on(http: &Client, on: &Instance, token: &str) -> Option<(String, String)> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let response = http.post(on.url("/api/oauth/token")).form(&form).send().await.ok()?;
    assert_eq!(response.status(), StatusCode::OK, "refresh on {}", on.name);
    let outcome = response.headers().get("x-tokenlab-refresh")?.to_str().ok()?.to_owned();
    let body: Value = response.json().await.ok()?;
    Some((body["refresh_token"].as_str()?.to_owned(), outcome))
}

#[tokio::test]
async fn b_keeps_serving_when_a_is_killed_mid_request_and_nothing_a_acknowledged_is_lost_or_doubled()
 {
    let Some(stores) = Stores::create("kill_an_instance").await else { return };
    let (a, b) = (Instance::start("A", &stores), Instance::start("B", &stores));
    let http = Client::new();
    let cookie = session_login(&http, &b).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let on = if i % 2 == 0 { &a } else { &b };
        let key = format!("before-{i}");
        let status = order_with_key(&http, on, &cookie, &key).await;
        assert_eq!(status, Some(StatusCode::CREATED), "{} before the kill", on.name);
        acknowledged.push(key);
    }

    // Four orders in flight on A, each held after claiming its key, and a refresh chain running
    // over both instances: then A is killed (SIGKILL, no draining).
    let tokens = password_grant(&http, &b).await;
    let mut token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let held: Vec<_> = (0..4)
        .map(|i| {
            let (http, cookie, url) = (http.clone(), cookie.clone(), a.url("/api/orders"));
            tokio::spawn(async move {
                http.post(url)
                    .header("cookie", cookie)
                    .header("idempotency-key", format!("in-flight-{i}"))
                    .header("x-demo-delay-ms", "5000")
                    .json(&json!({"item": "matcha", "quantity": 1}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    stores
        .wait_for_count(
            "SELECT COUNT(*) AS n FROM idempotency_keys WHERE key LIKE 'in-flight-%'",
            4,
        )
        .await;
    let a_pid = a.child.id();
    let (mut rotated_seen, mut repeated_seen) = (0, 0);
    for i in 0..30 {
        let on = if i % 2 == 0 { &a } else { &b };
        let sent = refresh_on(&http, on, &token);
        let answer = if i == 10 {
            // A dies while this refresh is on its way to it, or in it.
            let (answer, ()) = tokio::join!(sent, async { sigkill(a_pid) });
            answer
        } else {
            sent.await
        };
        // A client that got no answer retries the very same token on the other instance: whether
        // or not A rotated it before dying, the retry continues the chain (repeated, inside the
        // grace window, or rotated) and never looks like theft.
        let (child, outcome) = match answer {
            Some(answer) => answer,
            None => refresh_on(&http, &b, &token).await.expect("B answers the retry"),
        };
        match outcome.as_str() {
            "rotated" => rotated_seen += 1,
            "repeated" => repeated_seen += 1,
            other => panic!("X-Tokenlab-Refresh: {other}"),
        }
        token = child;
    }
    for (i, request) in held.into_iter().enumerate() {
        let answer = request.await.unwrap();
        assert!(answer.is_err(), "the order held on A got no answer: {i} {answer:?}");
    }
    for i in 0..20 {
        let key = format!("after-{i}");
        let status = order_with_key(&http, &b, &cookie, &key).await;
        assert_eq!(status, Some(StatusCode::CREATED), "B after the kill");
        acknowledged.push(key);
    }

    // The client retries the four that never got an answer, with their keys, on B: A's claims
    // hold them until their lease ends (409 in use), then B takes each over and makes its order
    // exactly once.
    for i in 0..4 {
        let key = format!("in-flight-{i}");
        let status = order_with_key(&http, &b, &cookie, &key).await;
        assert_eq!(status, Some(StatusCode::CONFLICT), "A's claim on {key} still holds");
    }
    let moved = http.post(b.url("/api/demo/clock")).json(&json!({"advance_seconds": 61}));
    assert_eq!(moved.send().await.unwrap().status(), StatusCode::OK);
    for i in 0..4 {
        let key = format!("in-flight-{i}");
        let status = order_with_key(&http, &b, &cookie, &key).await;
        assert_eq!(status, Some(StatusCode::CREATED), "B took over {key}");
        acknowledged.push(key);
    }

    let orders = get_with_cookie(&http, &b, "/api/orders", &cookie).await;
    let orders = orders["orders"].as_array().unwrap();
    let family_tokens = {
        use sea_orm::ConnectionTrait as _;
        let db = sea_orm::Database::connect(&stores.database.url).await.unwrap();
        let sql = "SELECT COUNT(*) AS n, COUNT(f.revoked_at) AS revoked FROM refresh_tokens t \
                   JOIN refresh_families f ON f.id = t.family_id";
        let statement = sea_orm::Statement::from_string(db.get_database_backend(), sql);
        let row = db.query_one_raw(statement).await.unwrap().unwrap();
        let (n, revoked) =
            (row.try_get::<i64>("", "n").unwrap(), row.try_get::<i64>("", "revoked").unwrap());
        db.close().await.unwrap();
        assert_eq!(revoked, 0, "no refresh family was revoked");
        n
    };
    eprintln!(
        "A killed mid-request: {} orders acknowledged, {} in the database; 30 refreshes: {rotated_seen} rotated, {repeated_seen} repeated, {} tokens in the family",
        acknowledged.len(),
        orders.len(),
        family_tokens
    );
    assert_eq!(orders.len(), 44, "each acknowledged order exactly once: {orders:?}");
    assert_eq!(acknowledged.len(), 44);
    // Every rotation the client saw is in the database, plus at most the one A made and never
    // answered (its retry on B was then told `repeated`).
    let rotations = family_tokens - 1;
    assert!(
        rotations == rotated_seen || (rotations == rotated_seen + 1 && repeated_seen == 1),
        "{rotations} rotations stored, {rotated_seen} rotated and {repeated_seen} repeated seen"
    );
    assert!(refresh_on(&http, &b, &token).await.is_some(), "the chain's last token still works");
}

/// One device's client: its id, its current secret and its `tl_device` cookie, as the lab keeps
/// them (a rotated secret from `X-Device-Token` replaces the old one).
struct DeviceClient {
    id: String,
    token: String,
    cookie: Option<String>,
}

impl DeviceClient {
    async fn me(&mut self, http: &Client, on: &Instance) -> (StatusCode, Value, bool) {
        let mut request = http
            .get(on.url("/api/device/me"))
            .header("x-device-id", &self.id)
            .header("x-device-token", &self.token);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let renewed = response.headers().contains_key("x-session-renewed");
        if let Some(rotated) = response.headers().get("x-device-token") {
            self.token = rotated.to_str().unwrap().to_owned();
        }
        if let Some(cookie) = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("tl_device="))
        {
            self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        }
        (status, response.json().await.unwrap_or(Value::Null), renewed)
    }
}

#[tokio::test]
async fn a_device_from_a_re_attaches_on_b_and_theft_seen_on_b_revokes_it_on_a() {
    let Some(stores) = Stores::create("devices_across_instances").await else { return };
    let (a, b) = (Instance::start("A", &stores), Instance::start("B", &stores));
    let http = Client::new();
    let login: Value = http
        .post(a.url("/api/device/login"))
        .json(&json!({"username": "alice", "password": "wonderland-demo",
                      "device_id": "cross-tablet-1", "mode": "hardened"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut tablet = DeviceClient {
        id: "cross-tablet-1".into(),
        token: login["device_token"].as_str().unwrap().to_owned(),
        cookie: None,
    };
    // The first call (on B) attaches a session; the next ones use it wherever they land.
    let (status, _, _) = tablet.me(&http, &b).await;
    assert_eq!(status, StatusCode::OK);
    let stolen = tablet.token.clone();
    let (status, _, renewed) = tablet.me(&http, &a).await;
    assert_eq!((status, renewed), (StatusCode::OK, false), "A serves B's session");

    // The session times out (the clock moved on A): B re-attaches from the database.
    let moved = http.post(a.url("/api/demo/clock")).json(&json!({"advance_seconds": 31 * 60}));
    assert_eq!(moved.send().await.unwrap().status(), StatusCode::OK);
    let (status, _, renewed) = tablet.me(&http, &b).await;
    assert_eq!((status, renewed), (StatusCode::OK, true), "re-attached on B");
    assert_ne!(tablet.token, stolen, "a re-attach rotates the hardened secret");

    // Past the grace window, the old secret replayed on B is theft; the device dies on A too.
    let moved = http.post(b.url("/api/demo/clock")).json(&json!({"advance_seconds": 31}));
    assert_eq!(moved.send().await.unwrap().status(), StatusCode::OK);
    let mut thief = DeviceClient { id: tablet.id.clone(), token: stolen, cookie: None };
    let (status, body, _) = thief.me(&http, &b).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("device_token_reused"))
    );
    let (status, body, _) = tablet.me(&http, &a).await;
    eprintln!("after theft seen on B, the device on A: {status} {}", body["reason"]);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        ["device_revoked", "not_logged_in"].contains(&body["reason"].as_str().unwrap()),
        "{body}"
    );
}

#[tokio::test]
async fn the_account_wide_login_ceiling_holds_across_instances_behind_nginx() {
    use futures::StreamExt as _;
    let Some(stores) = Stores::create("login_ceiling_across_instances").await else { return };
    // nginx connects from 127.0.0.1 and appends the address it was reached from to
    // X-Forwarded-For; the instances believe that header from it alone.
    let proxied = ["--trusted-proxies", "127.0.0.1"];
    let a = Instance::start_with("A", &stores, &proxied);
    let b = Instance::start_with("B", &stores, &proxied);
    let nginx = Nginx::start(&[&a, &b]);
    // Fifty clients, each on an address of its own: the loopback network is all of 127/8.
    let clients: Vec<Client> = (0..50)
        .map(|k| {
            let address = std::net::Ipv4Addr::new(127, 0, 0, 2 + k);
            Client::builder().local_address(std::net::IpAddr::V4(address)).build().unwrap()
        })
        .collect();
    let guesses = futures::stream::iter(0..1000_usize)
        .map(|i| {
            let mut request = clients[i % 50]
                .post(nginx.url("/api/session/login"))
                .json(&json!({"username": "alice", "password": format!("guess number {i}")}));
            // Half of them also forge an address of their own: nginx appends the real one after
            // it, and the rightmost entry is the one the instances believe.
            if i % 2 == 1 {
                request = request.header("x-forwarded-for", format!("203.0.113.{}", i % 250));
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                let instance = response
                    .headers()
                    .get("x-tokenlab-instance")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
                    .to_owned();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body["reason"].as_str().unwrap_or("").to_owned(), instance)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let checked = guesses.iter().filter(|(_, r, _)| r == "invalid_credentials").count();
    let limited = guesses.iter().filter(|(_, r, _)| r == "rate_limited").count();
    let other = guesses.len() - checked - limited;
    let by_a = guesses.iter().filter(|(_, _, on)| on == "A").count();
    let by_b = guesses.iter().filter(|(_, _, on)| on == "B").count();
    eprintln!(
        "1000 wrong passwords from 50 addresses through nginx: {checked} checked, {limited} rate_limited, {other} other; answered by A {by_a}, by B {by_b}"
    );
    assert_eq!(other, 0, "{guesses:?}");
    assert_eq!(by_a + by_b, 1000, "every answer came from A or B");
    assert!(by_a >= 100 && by_b >= 100, "nginx spread them: A {by_a}, B {by_b}");
    // Each address alone could have had 10 checked (500 in all); the account's ceiling, 100, held
    // for both instances together.
    assert!(checked <= 100, "{checked} passwords were checked");
    assert!(checked > 50, "the ceiling, not something else, stopped them: {checked}");

    // The address the instances count is the one nginx saw, not one the client wrote: a client on
    // an address of its own that forges a new X-Forwarded-For for every guess at one account is
    // held to that account-and-address pair's ten all the same (fifteen pairs if forging worked).
    let forger = Client::builder()
        .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 99)))
        .build()
        .unwrap();
    let mut forged = Vec::new();
    for i in 0..15 {
        let response = forger
            .post(nginx.url("/api/session/login"))
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .json(&json!({"username": "mallory-target", "password": "guess"}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        forged.push(body["reason"].as_str().unwrap_or("").to_owned());
    }
    let forged_checked = forged.iter().filter(|r| *r == "invalid_credentials").count();
    eprintln!(
        "15 guesses, each with a forged X-Forwarded-For, from one address: {forged_checked} checked"
    );
    assert_eq!(forged_checked, 10, "{forged:?}");
    assert!(forged[10..].iter().all(|r| r == "rate_limited"), "{forged:?}");
}

/// `tokenlab dpop …`, this package's own DPoP client, run as a shell would.
fn dpop_cli(args: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_tokenlab")).arg("dpop").args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_dpop_proof_counts_once_over_both_instances_and_either_accepts_the_others_nonce() {
    let Some(stores) = Stores::create("a_dpop_proof_counts_once").await else { return };
    let (a, b) = (Instance::start("A", &stores), Instance::start("B", &stores));
    let http = Client::new();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("proof-key.pem");
    let key = key_file.to_str().unwrap();
    dpop_cli(&["key", "--out", key]);
    // Proofs name the public address both instances answer at.
    let (token_url, me_url) = ("http://lab.test/api/oauth/token", "http://lab.test/api/jwt/me");
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")];

    // A hands out a nonce; B accepts it: nonces are derived from the shared key and the time.
    let first = dpop_cli(&["proof", "--key", key, "--method", "POST", "--url", token_url]);
    let challenge = http.post(a.url("/api/oauth/token")).header("dpop", first).form(&form);
    let challenge = challenge.send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::BAD_REQUEST);
    let nonce = challenge.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = dpop_cli(&[
        "proof", "--key", key, "--method", "POST", "--url", token_url, "--nonce", &nonce,
    ]);
    let tokens = http.post(b.url("/api/oauth/token")).header("dpop", proof).form(&form);
    let tokens: Value = tokens.send().await.unwrap().json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // One proof, captured, sent 50 times at once over A and B: accepted exactly once.
    let proof = dpop_cli(&[
        "proof",
        "--key",
        key,
        "--method",
        "GET",
        "--url",
        me_url,
        "--access-token",
        &access,
        "--nonce",
        &nonce,
    ]);
    let answers = split_over((&a, &b), 50, |on| {
        http.get(on.url("/api/jwt/me"))
            .header("authorization", format!("DPoP {access}"))
            .header("dpop", &proof)
    })
    .await;
    let replayed = answers
        .iter()
        .filter(|(s, body)| {
            *s == StatusCode::UNAUTHORIZED && body["reason"] == "dpop_proof_replayed"
        })
        .count();
    eprintln!(
        "one DPoP proof sent 50 times over A and B: {} accepted, {replayed} refused as replayed",
        count(&answers, StatusCode::OK)
    );
    assert_eq!((count(&answers, StatusCode::OK), replayed), (1, 49), "{answers:?}");
}
