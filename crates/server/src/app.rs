//! Assembling the server: database, state, routes, layers, listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes as _, file_and_error_handler, generate_route_list};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use tokenlab_core::Clock;
use tokenlab_core::password::OWASP_MINIMUM;
use tokenlab_core::random::SecretSource;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::api;
use crate::config::SessionStoreChoice;
use crate::config::{Profile, Settings};
use crate::error::ApiError;
use crate::hasher::PasswordHasher;
use crate::secrets::OsSecrets;
use crate::sessions::redis::RedisSessionStore;
use crate::sessions::{AnySessionStore, CookiePolicy, DbSessionStore};
use crate::state::{AppState, DemoClock, Shared};

use crate::keys::KeyStore;
use crate::keys::files::KeyDirectory;
use crate::middleware::AroundLayer;

/// The demo account every fresh lab has, so a learner can start without registering.
pub const DEMO_USERNAME: &str = "alice";
/// Her password as the README publishes it (`--demo-password` may set another in the demo).
const PUBLISHED_DEMO_PASSWORD: &str = "wonderland-demo";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("listening on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("seeding the demo account: {0}")]
    Seed(ApiError),
    #[error("setting up password hashing: {0}")]
    Hasher(ApiError),
    #[error("preparing the signing keys: {0}")]
    Keys(ApiError),
    #[error("reading --keys-dir: {0}")]
    KeyFiles(#[from] crate::keys::files::KeyFileError),
    #[error(
        "this database holds the demo account `{DEMO_USERNAME}` with the published demo password; \
         production refuses to serve it. Change its password (POST /api/accounts/password, from a \
         demo-profile start) or delete the account (DELETE FROM users WHERE username = \
         '{DEMO_USERNAME}'), then start again"
    )]
    DemoAccountInProduction,
    #[error("checking for the demo account: {0}")]
    DemoCheck(ApiError),
    #[error("connecting to the session store (--session-store): {0}")]
    SessionStore(::redis::RedisError),
}

/// A configured server bound to its port, not yet serving. Tests build one on port 0, read the port,
/// then run it in the background.
pub struct Application {
    listener: TcpListener,
    bound: SocketAddr,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings, base_clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        settings.validate()?;
        let pool = crate::db::PoolLimits {
            max_connections: settings.db_max_connections,
            acquire_timeout: Duration::from_secs(settings.db_acquire_timeout.into()),
        };
        let db = crate::db::connect_and_migrate(&settings.database_url, pool).await?;
        let db_fail_safe = crate::db::connect_fail_safe(&settings.database_url, pool, &db).await?;
        let sqlite_file = crate::db::sqlite_file_path(&settings.database_url);
        let db_fail_safe_inline = sqlite_file.as_deref().map(|path| {
            Arc::new(crate::sqlite_inline::SqliteFailSafeWrites::new(path, db_fail_safe.clone()))
        });
        // On the writes' connections: a login's reads then find the pages its writes just left.
        let sqlite_reads = db_fail_safe_inline
            .as_deref()
            .map(|writes| Arc::new(crate::sqlite_inline::SqliteReads::sharing(writes)));
        let listener = TcpListener::bind(settings.bind)
            .await
            .map_err(|source| StartError::Bind { addr: settings.bind, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr: settings.bind, source })?;

        let demo_clock = (settings.profile == Profile::Demo)
            .then(|| Arc::new(DemoClock::new(base_clock.clone())));
        let clock: Arc<dyn Clock> = match &demo_clock {
            Some(demo) => demo.clone(),
            None => base_clock.clone(),
        };
        let secrets: Arc<dyn SecretSource> = Arc::new(OsSecrets);
        let keys = match &settings.keys_dir {
            Some(dir) => KeyStore::Files(Arc::new(KeyDirectory::load(dir)?)),
            None => KeyStore::Database(Arc::default()),
        };
        let session_policy = settings.session_policy();
        let session_store = match &settings.session_store {
            SessionStoreChoice::Database => AnySessionStore::Database(DbSessionStore::new(
                db.clone(),
                db_fail_safe.clone(),
                secrets.clone(),
                base_clock,
                sqlite_reads.clone(),
                db_fail_safe_inline.clone(),
            )),
            SessionStoreChoice::Redis(url) => AnySessionStore::Redis(
                RedisSessionStore::connect(url, &settings.redis_prefix, secrets.clone())
                    .await
                    .map_err(StartError::SessionStore)?,
            ),
        };
        let state = AppState::new(Shared {
            session_store,
            db,
            db_fail_safe,
            sqlite_reads,
            db_fail_safe_inline,
            clock,
            demo_clock,
            hasher: PasswordHasher::new(
                OWASP_MINIMUM,
                settings.hash_concurrency,
                std::time::Duration::from_secs(settings.hash_queue_timeout.into()),
                settings.hash_nice,
            )
            .map_err(StartError::Hasher)?,
            keys,
            public_origin: settings.public_origin(bound).into(),
            allowed_origins: settings.allowed_origins(bound).into(),
            secrets,
            session_policy,
            cookies: CookiePolicy {
                secure: settings.public_origin(bound).starts_with("https://"),
                max_age: session_policy.absolute_timeout,
            },
            login_limits: settings.login_limits(),
            submit_policy: settings.submit_policy(),
            device_policy: settings.device_policy(),
            token_policy: settings.token_policy(),
            revoked_families: Arc::default(),
            verified_tokens: Arc::default(),
            parsed_session_copies: Arc::default(),
            parsed_device_copies: Arc::default(),
            settings: Arc::new(settings),
        });
        if let Some(clock) = &state.demo_clock {
            // Where the other instances' clocks already stand.
            clock.adopt(crate::demo_clock::load(&state.db).await?);
        }
        match &state.keys {
            KeyStore::Database(keys) => {
                crate::keys::ensure(&state.db, state.secrets.as_ref(), state.clock.now())
                    .await
                    .map_err(StartError::Keys)?;
                keys.reload(&state.db).await.map_err(StartError::Keys)?;
            }
            KeyStore::Files(dir) => {
                let newest = dir.newest();
                tracing::info!(
                    kid = newest.kid,
                    file = %newest.file.display(),
                    verifying = dir.newest_first().count(),
                    "signing access tokens with the newest key of --keys-dir"
                );
            }
        }
        if state.settings.profile == Profile::Demo {
            seed_demo_account(&state).await?;
        } else if demo_account_present(&state).await.map_err(StartError::DemoCheck)? {
            return Err(StartError::DemoAccountInProduction);
        }
        // Loaded before the first request, so a new instance never honours a revoked login.
        state.revoked_families.reload(&state.db, state.clock.as_ref()).await?;
        Ok(Self { listener, bound, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let collector = tokio::spawn(collect_garbage(self.state.clone()));
        let revocations = tokio::spawn(
            self.state
                .revoked_families
                .clone()
                .keep_loading(self.state.db.clone(), self.state.clock.clone()),
        );
        let key_reloads = self.state.keys.keep_loading(self.state.db.clone()).map(tokio::spawn);
        let clock_reloads = self.state.demo_clock.clone().map(|clock| {
            tokio::spawn(crate::demo_clock::keep_loading(self.state.db.clone(), clock))
        });
        let limits = crate::serve::ConnectionLimits {
            header_timeout: Duration::from_secs(self.state.settings.header_timeout.into()),
            max_connections: usize::try_from(self.state.settings.max_connections)
                .unwrap_or(usize::MAX),
        };
        let app = router(self.state.clone(), self.bound);
        let served = crate::serve::serve(self.listener, app, limits, shutdown).await;
        collector.abort();
        revocations.abort();
        for reloads in [key_reloads, clock_reloads].into_iter().flatten() {
            reloads.abort();
        }
        served
    }
}

/// Deletes rows that can no longer matter, now and then, so no table grows without bound:
/// dead sessions, expired idempotency keys, form tokens past their lifetime (a spent token is
/// kept that long too, to name the order a late duplicate duplicates), throttle counters whose
/// window is over, refresh families past their absolute end (no token of theirs can be valid; the
/// revoked-families cache forgets them at the same moment), and devices revoked or expired more
/// than `DEVICE_MEMORY` ago (until then, a stale token hears `device_revoked`, not "unknown").
async fn collect_garbage(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        if let Err(err) = collect_once(&state).await {
            tracing::warn!(error = %err, "garbage collection failed");
        }
    }
}

const DEVICE_MEMORY: time::Duration = time::Duration::days(30);

pub async fn collect_once(state: &AppState) -> Result<(), sea_orm::DbErr> {
    use sea_orm::sea_query::Query;
    use sea_orm::{ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _};

    use crate::entities::{
        devices, dpop_proofs_seen, form_tokens, idempotency_keys, refresh_families, refresh_tokens,
    };
    let sessions = state.session_store.delete_expired().await?;
    let now = state.clock.now();
    let now_s = now.unix_timestamp();
    let keys = idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::ExpiresAt.lt(now_s))
        .exec(&state.db)
        .await?
        .rows_affected;
    let tokens = form_tokens::Entity::delete_many()
        .filter(form_tokens::Column::ExpiresAt.lt(now_s))
        .exec(&state.db)
        .await?
        .rows_affected;
    // A proof whose iat left the window is refused as too old: its row has nothing to stop.
    let proofs = dpop_proofs_seen::Entity::delete_many()
        .filter(dpop_proofs_seen::Column::ExpiresAt.lt(now_s))
        .exec(&state.db)
        .await?
        .rows_affected;
    let limits = state.login_limits;
    let longest_window = [
        limits.per_client.window,
        limits.per_account_and_client.window,
        limits.per_account.window,
        limits.registrations_per_client.window,
    ]
    .into_iter()
    .max()
    .unwrap_or(time::Duration::ZERO);
    let throttle = state
        .db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            state.db.get_database_backend(),
            "DELETE FROM login_throttle WHERE window_started_at < $1",
            [(now - longest_window).unix_timestamp().into()],
        ))
        .await?
        .rows_affected();
    // A minute past the end, as the revoked-families cache keeps them (access-token leeway).
    let dead_families = Query::select()
        .column(refresh_families::Column::Id)
        .from(refresh_families::Entity)
        .and_where(refresh_families::Column::AbsoluteExpiresAt.lt(now_s - 60))
        .to_owned();
    let refresh = refresh_tokens::Entity::delete_many()
        .filter(refresh_tokens::Column::FamilyId.in_subquery(dead_families))
        .exec(&state.db)
        .await?
        .rows_affected;
    let families = refresh_families::Entity::delete_many()
        .filter(refresh_families::Column::AbsoluteExpiresAt.lt(now_s - 60))
        .exec(&state.db)
        .await?
        .rows_affected;
    let forgotten = (now - DEVICE_MEMORY).unix_timestamp();
    let devices = devices::Entity::delete_many()
        .filter(
            Condition::any()
                .add(devices::Column::RevokedAt.lt(forgotten))
                .add(devices::Column::ExpiresAt.lt(forgotten)),
        )
        .exec(&state.db)
        .await?
        .rows_affected;
    if sessions + keys + tokens + proofs + throttle + refresh + families + devices > 0 {
        tracing::info!(
            sessions,
            keys,
            tokens,
            proofs,
            throttle,
            refresh,
            families,
            devices,
            "expired rows removed"
        );
    }
    Ok(())
}

async fn seed_demo_account(state: &AppState) -> Result<(), StartError> {
    let password = state.settings.demo_password.clone();
    match api::accounts::register(state, DEMO_USERNAME, password).await {
        Ok(_) => Ok(()),
        Err(err) if err.reason() == tokenlab_core::Reason::UsernameTaken => Ok(()),
        Err(err) => Err(StartError::Seed(err)),
    }
}

/// Whether the demo account exists with the published demo password (a database that once served
/// the lab): anyone could log in as it.
async fn demo_account_present(state: &AppState) -> Result<bool, ApiError> {
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    let Some(user) = crate::entities::users::Entity::find()
        .filter(crate::entities::users::Column::Username.eq(DEMO_USERNAME))
        .one(&state.db)
        .await?
    else {
        return Ok(false);
    };
    // The configured demo password, and the published default whatever is configured.
    for password in [state.settings.demo_password.clone(), PUBLISHED_DEMO_PASSWORD.into()] {
        let slot = state.hasher.slot().await?;
        let verdict =
            state.hasher.verify_in(slot, password, Some(user.password_hash.clone())).await?;
        if matches!(verdict, crate::hasher::Verification::Match { .. }) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every route of the site and the API inside the middleware every request crosses: the service
/// `serve` answers each connection with.
fn router(
    state: AppState,
    bound: SocketAddr,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::http::Response<
        impl axum::body::HttpBody<Data = axum::body::Bytes, Error = axum::Error> + Send + 'static,
    >,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let (api, mut openapi) = api::router(&state);
    let (health, health_doc) = utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(livez))
        .routes(utoipa_axum::routes!(readyz))
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(jwks))
        .split_for_parts();
    openapi.merge(health_doc);
    let leptos_options = LeptosOptions::builder()
        .output_name("tokenlab")
        .site_root(state.settings.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(bound)
        .build();
    let routes = generate_route_list(tokenlab_web::App);
    let site = Router::new()
        .leptos_routes(&leptos_options, routes, {
            let options = leptos_options.clone();
            move || tokenlab_web::shell(options.clone())
        })
        .fallback(file_and_error_handler(tokenlab_web::shell))
        .with_state(leptos_options);

    // Scripts from this origin and inline scripts by hash only; framed by the lab's own pages
    // only (the attack lab's attacker frame is ours). See csp.rs.
    let site = crate::csp::protect(site);
    // The layers go on as one `ServiceBuilder` each, and around a whole `Router` rather than by
    // `Router::layer`. `Router::layer` wraps every route in a new boxed `Route`, and axum clones a
    // `Route`'s whole boxed stack (handler state included) on every request; routes wrapped in
    // routes are cloned level by level, so one API call cost 23 boxed clones (#14). A `Router`
    // clones as a pointer, so a stack around one is cloned only as deep as its own layers. The
    // outermost stack is served as it is (`serve` adds the client's address), not nested in one
    // more `Router`: that hop cost every request a route lookup and a boxed clone of the stack.
    let settings = &state.settings;
    // The handler's clock starts once its body is here, so a slow body is a 408, never a 503.
    let body_limits = crate::serve::BodyLimits {
        timeout: Duration::from_secs(settings.body_timeout.into()),
        max_bytes: crate::serve::MAX_BODY_BYTES,
    };
    let api = ServiceBuilder::new()
        .layer(AroundLayer(crate::error::JsonErrors))
        .layer(body_limits)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(settings.handler_timeout.into()),
        ))
        // API answers are per caller and often carry a token, a session or a secret: never
        // cached.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .service(api.with_state(state.clone()));
    let demo = state.settings.profile == Profile::Demo;
    // `--instance` is checked to be visible ASCII, and so is the host name before it is used.
    let instance = HeaderValue::from_str(&state.settings.instance_name(bound))
        .unwrap_or_else(|_| HeaderValue::from_static("tokenlab"));
    let app = Router::new()
        .nest_service("/api", api)
        .merge(api::docs::router(openapi))
        .merge(health.with_state(state))
        .merge(site);
    ServiceBuilder::new()
        .layer(AroundLayer(crate::observe::EveryRequest { instance, report_cookie_names: demo }))
        .service(app)
}

/// The public keys that verify access tokens (RFC 7517), each named by its `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth",
    responses((status = 200, body = tokenlab_core::wire::JwkSet)))]
async fn jwks(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<tokenlab_core::wire::JwkSet> {
    // The keys are in memory (see `keys`): publishing them cannot fail.
    axum::Json(state.keys.jwks())
}

/// Liveness: the process answers. No database, no authentication: the cheapest request the server
/// serves, and the 1.0 every load-test ratio is measured against.
#[utoipa::path(get, path = "/livez", tag = "operations",
    responses((status = 200, description = "The process serves requests", body = String, example = "ok")))]
async fn livez() -> &'static str {
    "ok"
}

/// Readiness: the process answers and its dependencies answer too: the database, and the
/// session store when it is Redis (`--session-store`). A refusal names the one that does not.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Serving, and every dependency answers", body = String, example = "ok"),
              (status = 500, description = "The database answers with a fault", body = crate::error::ErrorBody),
              (status = 503, description = "The database does not answer (`database_unavailable`), or the session store (Redis) does not (`session_store_unavailable`)", body = crate::error::ErrorBody)))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    ping(&state.db).await?;
    if let Some(problem) = state.session_store.problem().await {
        tracing::warn!("not ready: {problem}");
        return Err(ApiError::refused(
            tokenlab_core::Reason::SessionStoreUnavailable,
            "the database answers; the session store (Redis) does not",
        ));
    }
    Ok("ok")
}

/// The older name of `/readyz`, kept so that existing probes keep working.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Serving, and every dependency answers", body = String, example = "ok"),
              (status = 500, description = "The database answers with a fault", body = crate::error::ErrorBody),
              (status = 503, description = "The database does not answer (`database_unavailable`), or the session store (Redis) does not (`session_store_unavailable`)", body = crate::error::ErrorBody)))]
async fn healthz(state: axum::extract::State<AppState>) -> Result<&'static str, ApiError> {
    readyz(state).await
}

async fn ping(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
