//! `spawn_app`: one server per test, on its own database and its own stopped clock; `TestUser`,
//! and the sign-ins every area's tests start from.
//!
//! # Time
//!
//! Every server a test starts runs on a [`ManualClock`] that starts at [`START`] and stands still
//! until the test moves it, so every expiry, grace window and `Retry-After` is an exact number. Two
//! ways to move the server's time:
//! - [`TestApp::advance_clock`]: the demo clock (`POST /api/demo/clock`), as the lab's buttons do;
//!   the clock the handlers read, shared through the database by every instance on it (the one
//!   that moved it at once, the others before the move is answered).
//! - `app.clock.advance(..)`: the base clock under every instance of the test (the session store's
//!   cookie and garbage expiry read it too), for time that has to pass without the demo endpoint.
//!
//! No test reads the system clock to learn what time the server has: it is `app.clock.now()`, plus
//! whatever the test advanced the demo clock by.
//!
//! # Backends
//!
//! [`backend_test!`] turns `async fn name(backend: Backend)` into two tests, `name::sqlite` and
//! `name::postgres`, so a failure on one backend never hides the other. The PostgreSQL test needs
//! `TEST_DATABASE_URL` (a server on which it may create and drop databases, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`). When that variable is unset it does not run: it
//! says so on stderr and returns. That is only for a developer's machine without PostgreSQL; CI
//! always sets it (`.ci/run` exports it whenever 127.0.0.1:5432 answers), so there every
//! `::postgres` test runs for real.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum_extra::extract::cookie::Cookie;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;
use tokenlab_core::{ManualClock, Timestamp};
use tokenlab_server::config::{Profile, TrustedProxies};
use tokenlab_server::secrets::OsSecrets;
use tokenlab_server::{Application, Settings};

use crate::scratch_database::ScratchDatabase;

/// Where every test's clock starts. In the past of any machine that runs the tests: the session
/// store's rows carry tower-sessions' expiry on the system clock, and its garbage collector
/// compares them with this clock, so it never collects a live session.
pub const START: Timestamp = datetime!(2026-01-01 00:00 UTC);

/// `backend_test!(name);` above `async fn name(backend: Backend)` generates `name::sqlite` and
/// `name::postgres` (see the module comment for when the PostgreSQL one does not run).
macro_rules! backend_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                if $crate::helpers::postgres_configured(module_path!()) {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    };
}

/// Where a test's database lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether `TEST_DATABASE_URL` names a PostgreSQL server; if not, says on stderr that `test` does
/// not run.
pub fn postgres_configured(test: &str) -> bool {
    let configured = std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty());
    if !configured {
        eprintln!(
            "{test}::postgres: NOT RUN — PostgreSQL is not configured (set TEST_DATABASE_URL, \
             e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    configured
}

/// An account to sign in with: a name and its password.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub username: String,
    pub password: String,
}

impl TestUser {
    pub fn new(username: &str, password: &str) -> Self {
        Self { username: username.to_owned(), password: password.to_owned() }
    }

    /// The demo account, seeded at start in the demo profile.
    pub fn alice() -> Self {
        Self::new("alice", "wonderland-demo")
    }

    /// The same name with another password: a wrong guess, or the password after a change.
    pub fn with_password(&self, password: &str) -> Self {
        Self::new(&self.username, password)
    }

    fn credentials(&self) -> Value {
        json!({"username": self.username, "password": self.password})
    }
}

/// A sign-in as a client holds it, sent explicitly with every request (no cookie jar), so a test
/// says exactly what each request carries.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The `tl_session` cookie's value.
    Session(String),
    /// The `tl_device` cookie's value, and the headers of the device scheme.
    Device { cookie: String, device_id: String, token: String },
    /// An access token.
    Bearer(String),
}

impl Credential {
    pub fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Credential::Session(cookie) => request.header("cookie", format!("tl_session={cookie}")),
            Credential::Device { cookie, device_id, token } => request
                .header("cookie", format!("tl_device={cookie}"))
                .header("x-device-id", device_id)
                .header("x-device-token", token),
            Credential::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// A session sign-in's cookie value.
    pub fn session_cookie(&self) -> &str {
        match self {
            Credential::Session(cookie) => cookie,
            other => panic!("not a session sign-in: {other:?}"),
        }
    }

    /// A device sign-in's cookie value.
    pub fn device_cookie(&self) -> &str {
        match self {
            Credential::Device { cookie, .. } => cookie,
            other => panic!("not a device sign-in: {other:?}"),
        }
    }

    /// A device sign-in's secret.
    pub fn device_token(&self) -> &str {
        match self {
            Credential::Device { token, .. } => token,
            other => panic!("not a device sign-in: {other:?}"),
        }
    }
}

/// What `POST /api/device/login` gave: the sign-in, and the response body.
pub struct DeviceLogin {
    pub credential: Credential,
    pub body: Value,
}

pub struct TestApp {
    pub base: String,
    /// Keeps cookies, like a browser.
    pub client: Client,
    /// The base clock of this server, shared with its [`TestApp::second_instance`]s.
    pub clock: Arc<ManualClock>,
    /// Owned by the first instance on a database; a second instance only borrows its URL.
    _db: Option<TestDb>,
    /// The production profile's `--keys-dir`, when the test did not name one.
    _keys: Option<tempfile::TempDir>,
    database_url: String,
    /// Numbers the users [`TestApp::register_user`] creates, across instances on this database.
    users: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A clock standing at [`START`].
pub fn test_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START))
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A fresh production key directory, as `tokenlab keys generate` writes it; deleted when dropped.
pub fn test_keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tokenlab_server::keys::files::generate(dir.path(), START, &OsSecrets).unwrap();
    dir
}

/// The production profile, served (as far as cookies are concerned) at `https://lab.example`.
/// A server started through [`spawn_app_with`] also gets a fresh `--keys-dir` unless the test
/// names one.
pub fn production(settings: &mut Settings) {
    settings.profile = Profile::Production;
    settings.public_url = Some("https://lab.example".into());
    // Clients connect directly: production requires this to be said, not assumed.
    settings.trusted_proxies = Some(TrustedProxies::default());
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::create(backend).await;
    let url = db.url.clone();
    serve(url, Some(db), test_clock(), Arc::default(), configure).await
}

async fn serve(
    database_url: String,
    db: Option<TestDb>,
    clock: Arc<ManualClock>,
    users: Arc<AtomicUsize>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::for_tests(database_url.clone());
    configure(&mut settings);
    let keys =
        (settings.profile == Profile::Production && settings.keys_dir.is_none()).then(|| {
            let dir = test_keys();
            settings.keys_dir = Some(dir.path().to_owned());
            dir
        });
    let app = Application::build(settings, clock.clone()).await.expect("server starts");
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
        clock,
        _db: db,
        _keys: keys,
        database_url,
        users,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Another server process's worth of state (its own caches, its own copy of the demo clock) on the same
    /// database and the same base clock: what a second instance behind a load balancer is. Stop it
    /// before this one.
    pub async fn second_instance(&self) -> TestApp {
        // Behind one load balancer both answer at one public address (the tokens' issuer).
        let public_url = self.base.clone();
        self.second_instance_with(|settings| settings.public_url = Some(public_url)).await
    }

    /// Another instance on this database, configured by the test (which then also chooses its
    /// public address): an instance restarted with other settings.
    pub async fn second_instance_with(&self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let (clock, users) = (self.clock.clone(), self.users.clone());
        serve(self.database_url.clone(), None, clock, users, configure).await
    }

    /// The single number a `SELECT COUNT(*) AS n …` answers, read straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        crate::scratch_database::count(self.database_url(), sql).await
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

    /// `GET path` as `who`, from a client without cookies.
    pub async fn get_as(&self, path: &str, who: &Credential) -> Response {
        who.apply(Client::new().get(self.url(path))).send().await.unwrap()
    }

    /// Moves the demo clock forward.
    pub async fn advance_clock(&self, seconds: i64) {
        let response =
            self.post_json("/api/demo/clock", &json!({"advance_seconds": seconds})).await;
        assert_eq!(response.status(), StatusCode::OK, "clock advance");
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json("/api/accounts", &json!({"username": username, "password": password})).await
    }

    /// A new account with a name no other user of this server has.
    pub async fn register_user(&self) -> TestUser {
        let n = self.users.fetch_add(1, Ordering::SeqCst) + 1;
        let user = TestUser::new(&format!("user{n}"), &format!("password of user {n}"));
        let response = self.register(&user.username, &user.password).await;
        assert_eq!(response.status(), StatusCode::CREATED, "registering {}", user.username);
        user
    }

    /// `POST /api/session/login` from a browser without cookies; the response as it came.
    pub async fn try_session_login(&self, user: &TestUser) -> Response {
        Client::new()
            .post(self.url("/api/session/login"))
            .header("user-agent", "test-browser/1.0")
            .json(&user.credentials())
            .send()
            .await
            .unwrap()
    }

    /// A session sign-in (scheme 2): the cookie it set.
    pub async fn session_login(&self, user: &TestUser) -> Credential {
        let response = self.try_session_login(user).await;
        assert_eq!(response.status(), StatusCode::OK, "session login of {}", user.username);
        Credential::Session(set_cookie(&response, "tl_session").expect("login sets tl_session"))
    }

    /// A device sign-in (scheme 1) in `mode` (`as_written` or `hardened`): the cookie it set, the
    /// device id and the token it gave.
    pub async fn device_login(&self, user: &TestUser, device_id: &str, mode: &str) -> DeviceLogin {
        let mut body = user.credentials();
        body["device_id"] = json!(device_id);
        body["mode"] = json!(mode);
        let response = Client::new()
            .post(self.url("/api/device/login"))
            .header("user-agent", format!("device/{device_id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "device login of {}", user.username);
        let cookie = set_cookie(&response, "tl_device").expect("login sets tl_device");
        let body: Value = response.json().await.unwrap();
        let token = body["device_token"].as_str().unwrap().to_owned();
        DeviceLogin {
            credential: Credential::Device { cookie, device_id: device_id.to_owned(), token },
            body,
        }
    }

    /// The OAuth password grant, form-encoded as RFC 6749 shows, from a client without cookies;
    /// the response as it came.
    pub async fn try_password_grant(&self, user: &TestUser) -> Response {
        Client::new()
            .post(self.url("/api/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", &user.username),
                ("password", &user.password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The password grant that succeeds: the token response's body.
    pub async fn password_grant(&self, user: &TestUser) -> Value {
        let response = self.try_password_grant(user).await;
        assert_eq!(response.status(), StatusCode::OK, "password grant of {}", user.username);
        response.json().await.unwrap()
    }

    /// The refresh grant, from a client without cookies.
    pub async fn refresh(&self, token: &str) -> Response {
        Client::new()
            .post(self.url("/api/oauth/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .await
            .unwrap()
    }

    pub async fn session_me(&self, who: &Credential) -> Response {
        self.get_as("/api/session/me", who).await
    }

    pub async fn device_me(&self, who: &Credential) -> Response {
        self.get_as("/api/device/me", who).await
    }

    pub async fn jwt_me(&self, access_token: &str) -> Response {
        self.get_as("/api/jwt/me", &Credential::Bearer(access_token.to_owned())).await
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
    set_cookies(response).find(|c| c.name() == name).map(|c| c.value().to_owned())
}

/// The whole `Set-Cookie` line for the named cookie, attributes included.
pub fn set_cookie_line(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|line| Cookie::parse(*line).is_ok_and(|c| c.name() == name))
        .map(str::to_owned)
}

/// Every cookie a response sets, parsed by the `cookie` crate (as the server builds them).
fn set_cookies(response: &Response) -> impl Iterator<Item = Cookie<'static>> + '_ {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| Cookie::parse(line.to_owned()).ok())
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
    _owned: TestDbKind,
}

enum TestDbKind {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] ScratchDatabase),
}

impl TestDb {
    async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self { url, _owned: TestDbKind::Sqlite(dir) }
            }
            Backend::Postgres => {
                let admin_url =
                    std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set");
                let db = ScratchDatabase::create(&admin_url, "tokenlab_test").await;
                Self { url: db.url.clone(), _owned: TestDbKind::Postgres(db) }
            }
        }
    }
}
