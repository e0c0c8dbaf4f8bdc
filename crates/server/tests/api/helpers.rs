//! `spawn_app`: one server per test, on its own database.

use std::sync::Arc;

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use tokenlab_server::config::Profile;
use tokenlab_server::{Application, Settings, clock::SystemClock};

/// Where a test's database lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` names a server to create databases on.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        all.push(Backend::Postgres);
    }
    all
}

pub struct TestApp {
    pub base: String,
    /// Keeps cookies, like a browser.
    pub client: Client,
    /// Owned by the first instance on a database; a second instance only borrows its URL.
    _db: Option<TestDb>,
    database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// The production profile, served (as far as cookies are concerned) at `https://lab.example`.
pub fn production(settings: &mut Settings) {
    settings.profile = Profile::Production;
    settings.public_url = Some("https://lab.example".into());
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::create(backend).await;
    let url = db.url.clone();
    serve(url, Some(db), configure).await
}

async fn serve(
    database_url: String,
    db: Option<TestDb>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::for_tests(database_url.clone());
    configure(&mut settings);
    let app = Application::build(settings, Arc::new(SystemClock)).await.expect("server starts");
    let addr = app.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base: format!("http://{addr}"),
        client: Client::builder().cookie_store(true).build().unwrap(),
        _db: db,
        database_url,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Another server process's worth of state (its own caches, its own demo clock) on the same
    /// database: what a second instance behind a load balancer is. Stop it before this one.
    pub async fn second_instance(&self) -> TestApp {
        // Behind one load balancer both answer at one public address (the tokens' issuer).
        let public_url = self.base.clone();
        serve(self.database_url.clone(), None, |settings| settings.public_url = Some(public_url))
            .await
    }

    /// The single number a `SELECT COUNT(*) AS n …` answers, read straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait as _;
        let db = sea_orm::Database::connect(self.database_url()).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        let n = row.try_get::<i64>("", "n").unwrap();
        db.close().await.unwrap();
        n
    }

    /// Polls the database until `sql` counts `n`: the event a test waits for, never a fixed sleep.
    pub async fn wait_for_count(&self, sql: &str, n: i64) {
        for _ in 0..1000 {
            if self.count(sql).await == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("never counted {n}: {sql}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    /// Moves the demo clock forward.
    pub async fn advance_clock(&self, seconds: i64) {
        let response = self
            .post_json("/api/demo/clock", &serde_json::json!({"advance_seconds": seconds}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "clock advance");
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/api/accounts",
            &serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    /// Stops the server and waits for it, so the database can be dropped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// The value a response's `Set-Cookie` gives the named cookie, if it sets it.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    set_cookie_line(response, name)
        .and_then(|line| line.split(';').next().map(str::to_owned))
        .and_then(|pair| pair.split_once('=').map(|(_, value)| value.to_owned()))
}

/// The whole `Set-Cookie` line for the named cookie, attributes included.
pub fn set_cookie_line(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Asserts the status and that the body is `{reason, message}` with the given reason.
pub async fn assert_refused(response: Response, status: StatusCode, reason: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["reason"], reason, "reason in {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "message in {body}");
    body
}

/// A fresh database: a temporary SQLite file, or a new PostgreSQL database dropped afterwards.
struct TestDb {
    url: String,
    kind: TestDbKind,
}

enum TestDbKind {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self { url, kind: TestDbKind::Sqlite(dir) }
            }
            Backend::Postgres => {
                use sea_orm::ConnectionTrait as _;
                let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
                let name = format!("tokenlab_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL answers");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                admin.close().await.unwrap();
                let mut url = reqwest::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                Self { url: url.to_string(), kind: TestDbKind::Postgres { admin_url, name } }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDbKind::Postgres { admin_url, name } = &self.kind {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
            // small runtime can.
            let dropped = std::thread::spawn(move || {
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    use sea_orm::ConnectionTrait as _;
                    let admin = sea_orm::Database::connect(&admin_url).await?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await?;
                    admin.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop test database {}", self.url);
            }
        }
    }
}

/// The OAuth password grant for the demo account, form-encoded as RFC 6749 shows; the token
/// response's body.
pub async fn password_grant(app: &TestApp) -> Value {
    let response = Client::new()
        .post(app.url("/api/oauth/token"))
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The refresh grant, from a client without cookies.
pub async fn refresh(app: &TestApp, token: &str) -> Response {
    Client::new()
        .post(app.url("/api/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
}
