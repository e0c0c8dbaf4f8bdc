//! tower-sessions on the application database.
//!
//! Why a store of our own rather than `tower-sessions-sqlx-store`: that crate brings sqlx 0.8 beside
//! sea-orm's sqlx 0.9, so two pools and two SQLite drivers on one database. This store uses the
//! server's one sea-orm connection, on SQLite and PostgreSQL alike, and adds two things the crate
//! does not do: ids are drawn from the injected [`SecretSource`], and rows are keyed by the SHA-256
//! of the id, so the table never holds a usable cookie value.
//!
//! Saving never creates. tower-sessions saves a session after every request that touched it, and
//! a request that loaded the session before a logout (or a sign-out everywhere, or an expiry)
//! finishes after it. A store that upserted would write the ended session back, and the old cookie
//! would work again. Here `create` is the only insert, `save` updates a row that still exists and
//! otherwise writes nothing, and [`forget_ended_session`] then tells the browser to drop the cookie.
//!
//! Ownership. Each scheme writes a [`SessionOwner`] into the session data at login; the store copies
//! the user, the device and an opaque handle into columns, so a user's sessions can be listed and
//! ended together without reading every session.
//!
//! Expiry: tower-sessions computes a record's `expiry_date` from the system clock. tokenlab's own
//! idle and absolute timeouts (`core::session`) are kept in the session data and checked against
//! the injected clock by the handlers; the record's `expiry_date` only tells the garbage collector
//! when a row is certainly dead.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum_extra::extract::cookie::Cookie;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _, QueryFilter as _, Set,
};
use serde::{Deserialize, Serialize};
use tokenlab_core::random::SecretSource;
use tokenlab_core::signout::Scheme;
use tokenlab_core::{Clock, Reason, Timestamp};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::entities::{dpop_proofs_seen, sessions};
use crate::error::ApiError;
use crate::secrets::storage_hash;
use crate::sqlite_inline::{SqliteFailSafeWrites, SqliteReads, try_inline, try_inline_write};

pub mod copy;
pub mod redis;

/// How a store's error says that the store itself could not be reached (answered 503
/// `session_store_unavailable`, see `error.rs`), as opposed to a fault.
pub const UNAVAILABLE: &str = "session store unavailable: ";

/// The same, when the store is the application database ([`DbSessionStore`]): answered 503
/// `database_unavailable`, like any other request the database could not serve.
const DATABASE_UNAVAILABLE: &str = "session store unavailable (database): ";

/// The 503 a store's `Backend` error stands for, if it says the store could not be reached.
pub fn unavailable_reason(message: &str) -> Option<Reason> {
    if message.starts_with(DATABASE_UNAVAILABLE) {
        Some(Reason::DatabaseUnavailable)
    } else if message.starts_with(UNAVAILABLE) {
        Some(Reason::SessionStoreUnavailable)
    } else {
        None
    }
}

/// One stored session as the sessions list, sign-out and the inspector see it.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id_hash: String,
    /// The session's data as JSON.
    pub data: String,
    pub device_pk: Option<i64>,
    pub handle: Option<String>,
}

/// Where a session's owner record lives in its data.
pub const OWNER_KEY: &str = "owner";

/// Whose a server session is and how it began; written by the scheme that creates the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionOwner {
    pub user_id: i64,
    pub scheme: Scheme,
    /// The `devices.id` of a device-scheme session.
    pub device_pk: Option<i64>,
    /// The sessions list's id for this session (random, 128 bits, hex).
    pub handle: String,
    pub user_agent: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

impl SessionOwner {
    /// The owner record of a session a scheme is about to start for `user_id`.
    pub fn start(
        state: &crate::state::AppState,
        user_id: i64,
        scheme: Scheme,
        device_pk: Option<i64>,
        headers: &axum::http::HeaderMap,
    ) -> Result<Self, crate::error::ApiError> {
        Ok(Self {
            user_id,
            scheme,
            device_pk,
            handle: crate::secrets::new_handle(state.secrets.as_ref())?,
            user_agent: user_agent(headers),
            created_at: state.clock.now(),
        })
    }
}

/// The client's `User-Agent`, bounded, to tell one sign-in from another in a list.
pub fn user_agent(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("unknown client")
        .chars()
        .take(200)
        .collect()
}

/// What a request's session saves ran into, which the session layer does not tell in its answer,
/// and the session the request created, which the layer's save after the handler compares with.
#[derive(Default)]
struct SaveReport {
    /// The save found its session gone (ended while the request ran).
    found_no_session: std::cell::Cell<bool>,
    /// The save could not reach the store: the 503 that says so.
    store_unavailable: std::cell::Cell<Option<Reason>>,
    /// The session this request created in the store, as created.
    created: std::cell::RefCell<Option<Created>>,
}

/// A session as this request created it: what the session layer's save after the handler
/// compares with.
struct Created {
    id: Id,
    data: std::collections::HashMap<String, serde_json::Value>,
    expires_at: i64,
}

/// How much later than at its creation a session's record may expire and still count as
/// unchanged. tower-sessions recomputes the record's expiry from the system clock at every save,
/// so the layer's save a moment after the handler's may fall in the next second. The record's
/// expiry only tells the store when to drop the row (the session's own timeouts are in its data,
/// `core::session`), and it is hours away; a minute is the step the sliding expiry is written
/// back in anyway (ADR 28).
const SAME_RECORD_EXPIRY_SLACK_S: i64 = 60;

impl Created {
    fn of(record: &Record) -> Self {
        Self {
            id: record.id,
            data: record.data.clone(),
            expires_at: record.expiry_date.unix_timestamp(),
        }
    }

    fn unchanged_in(&self, record: &Record) -> bool {
        let later_by = record.expiry_date.unix_timestamp() - self.expires_at;
        self.id == record.id
            && (0..=SAME_RECORD_EXPIRY_SLACK_S).contains(&later_by)
            && self.data == record.data
    }
}

/// Whether `record` is the session this request created, unchanged since.
///
/// Why: a handler that needs its new session in the store before it answers (every login, which
/// then checks that the password is still the user's) saves it itself, and the session layer
/// saves it once more after the handler, since tower-sessions never clears a session's
/// "modified" mark. That second write changed nothing and cost every login a durable commit. Only
/// a session this very request created is skipped, and only unchanged: its id is new and no one
/// else has been sent it, so no other request wrote it since. If a sign-out everywhere racing the
/// login ended it meanwhile, it stays ended; its cookie is then refused on first use instead of
/// being dropped in this answer. A session the request deleted itself is saved as before, so that
/// its save finds it gone and the cookie is dropped ([`forget_ended_session`]).
fn created_unchanged(record: &Record) -> bool {
    SAVE_REPORT
        .try_with(|report| {
            report.created.borrow().as_ref().is_some_and(|created| created.unchanged_in(record))
        })
        .unwrap_or(false)
}

/// Remembers, for the rest of the request, the session a store has just created.
fn note_created(record: &Record) {
    let _ = SAVE_REPORT.try_with(|report| *report.created.borrow_mut() = Some(Created::of(record)));
}

/// Forgets the session this request created once it is deleted.
fn note_deleted(id: &Id) {
    let _ = SAVE_REPORT.try_with(|report| {
        let mut created = report.created.borrow_mut();
        if created.as_ref().is_some_and(|c| c.id == *id) {
            *created = None;
        }
    });
}

/// Makes sure a session about to be signed in gets an id it never had: the id a request brought
/// (a cookie from before the login, perhaps planted) is deleted, never promoted. A request that
/// brought none needs nothing deleted: its first save creates the session, and both stores draw
/// the new id themselves (`create`). `Session::cycle_id` would still delete the id tower-sessions
/// made up for it — one statement for nothing on every login.
pub async fn renew_id(session: &Session) -> Result<(), tower_sessions::session::Error> {
    if session.id().is_some() {
        session.cycle_id().await?;
    }
    Ok(())
}

tokio::task_local! {
    /// Set by [`forget_ended_session`] around a request.
    static SAVE_REPORT: SaveReport;
}

/// Wraps a session layer: when the session a request loaded was ended while the request ran (its
/// save found no row), the response tells the browser to drop `cookie_name` — whatever the session
/// layer itself set — so the dead id is not kept. When the save after the handler could not reach
/// the store, the session layer answers a bare 500; the client is told what it is told when the
/// load failed the same way, 503 `session_store_unavailable`, since retrying is what helps.
pub async fn forget_ended_session(
    State((cookie_name, secure)): State<(String, bool)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut response, found_none, unavailable) = SAVE_REPORT
        .scope(SaveReport::default(), async {
            let response = next.run(request).await;
            SAVE_REPORT.with(|report| {
                (response, report.found_no_session.get(), report.store_unavailable.get())
            })
        })
        .await;
    if let Some(reason) = unavailable
        && response.status() == axum::http::StatusCode::INTERNAL_SERVER_ERROR
    {
        return ApiError::refused(reason, "the session store does not answer; retry in a moment")
            .into_response();
    }
    if found_none {
        let headers = response.headers_mut();
        let others: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| !v.as_bytes().starts_with(format!("{cookie_name}=").as_bytes()))
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for value in others {
            headers.append(header::SET_COOKIE, value);
        }
        // With the attributes the cookie was set with: a browser ignores a `__Host-` cookie
        // without `Secure`, removal included.
        let removal = Cookie::build((cookie_name, ""))
            .path("/")
            .max_age(time::Duration::ZERO)
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax);
        if let Ok(removal) = HeaderValue::from_str(&removal.to_string()) {
            headers.append(header::SET_COOKIE, removal);
        }
    }
    response
}

/// Tells [`forget_ended_session`] that the request's save found its session gone.
fn note_save_found_no_session() {
    let _ = SAVE_REPORT.try_with(|report| report.found_no_session.set(true));
}

/// Tells [`forget_ended_session`] when a save failed because the store could not be reached.
fn note_save_result(result: &session_store::Result<()>) {
    if let Err(session_store::Error::Backend(message)) = result
        && let Some(reason) = unavailable_reason(message)
    {
        let _ = SAVE_REPORT.try_with(|report| report.store_unavailable.set(Some(reason)));
    }
}

/// Where server sessions live: the application database (the default), or Redis
/// (`--session-store`). Both keep the same promises; see each store's module.
#[derive(Clone, Debug)]
pub enum AnySessionStore {
    Database(DbSessionStore),
    Redis(redis::RedisSessionStore),
}

impl AnySessionStore {
    /// The sessions owned by `user_id` (through `conn` on the database, so inside the caller's
    /// transaction).
    pub async fn of_user(
        &self,
        conn: &impl ConnectionTrait,
        user_id: i64,
    ) -> Result<Vec<StoredSession>, ApiError> {
        match self {
            Self::Database(_) => Ok(sessions::Entity::find()
                .filter(sessions::Column::UserId.eq(user_id))
                .all(conn)
                .await?
                .into_iter()
                .map(|row| StoredSession {
                    id_hash: row.id_hash,
                    data: row.data,
                    device_pk: row.device_pk,
                    handle: row.handle,
                })
                .collect()),
            Self::Redis(store) => Ok(store.of_user(user_id).await?),
        }
    }

    /// Ends the sessions of `user_id` that `chosen` picks; how many ended. On the database it is
    /// part of the caller's transaction; in Redis it happens at once, before that transaction
    /// commits — ending a session early is the safe side of a failure.
    pub async fn end_of_user(
        &self,
        conn: &impl ConnectionTrait,
        user_id: i64,
        chosen: impl Fn(&StoredSession) -> bool,
    ) -> Result<u64, ApiError> {
        match self {
            Self::Database(_) => {
                let ending: Vec<String> = self
                    .of_user(conn, user_id)
                    .await?
                    .into_iter()
                    .filter(|s| chosen(s))
                    .map(|s| s.id_hash)
                    .collect();
                if ending.is_empty() {
                    return Ok(0);
                }
                Ok(sessions::Entity::delete_many()
                    .filter(sessions::Column::IdHash.is_in(ending))
                    .exec(conn)
                    .await?
                    .rows_affected)
            }
            Self::Redis(store) => Ok(store.end_of_user(user_id, chosen).await?),
        }
    }

    /// Ends every server session of everyone (the demo's reset and "expire every session").
    pub async fn end_everyone(&self, conn: &impl ConnectionTrait) -> Result<u64, ApiError> {
        match self {
            Self::Database(_) => {
                Ok(sessions::Entity::delete_many().exec(conn).await?.rows_affected)
            }
            Self::Redis(store) => Ok(store.end_everyone().await?),
        }
    }

    /// Records that the DPoP proof `proof_hash` was accepted, unless it already was: `true` the
    /// first time, `false` for a replay — on whichever instance it was first seen, since every
    /// instance shares this store. One atomic statement (an insert that does nothing on conflict,
    /// or Redis' `SET NX`), so two instances racing with the same proof cannot both win.
    pub async fn record_proof_once(
        &self,
        db: &DatabaseConnection,
        proof_hash: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, ApiError> {
        match self {
            Self::Database(_) => {
                let seen = dpop_proofs_seen::ActiveModel {
                    proof_hash: Set(proof_hash.to_owned()),
                    expires_at: Set(expires_at.unix_timestamp()),
                };
                let inserted = dpop_proofs_seen::Entity::insert(seen)
                    .on_conflict(
                        OnConflict::column(dpop_proofs_seen::Column::ProofHash)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(db)
                    .await?;
                Ok(inserted == 1)
            }
            Self::Redis(store) => {
                let lifetime = (expires_at - now).whole_seconds().max(1);
                Ok(store.record_once(proof_hash, lifetime).await?)
            }
        }
    }

    /// Removes sessions whose record expired (Redis does that by itself).
    pub async fn delete_expired(&self) -> Result<u64, sea_orm::DbErr> {
        match self {
            Self::Database(store) => store.delete_expired().await,
            Self::Redis(_) => Ok(0),
        }
    }

    /// `None` when the store answers; otherwise what is wrong (`/readyz`).
    pub async fn problem(&self) -> Option<String> {
        match self {
            // The database is checked as the database.
            Self::Database(_) => None,
            Self::Redis(store) => store.ping().await.err().map(|e| e.to_string()),
        }
    }
}

#[async_trait]
impl SessionStore for AnySessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let result = match self {
            Self::Database(store) => store.create(record).await,
            Self::Redis(store) => store.create(record).await,
        };
        note_save_result(&result);
        if result.is_ok() {
            note_created(record);
        }
        result
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if created_unchanged(record) {
            return Ok(());
        }
        let result = match self {
            Self::Database(store) => store.save(record).await,
            Self::Redis(store) => store.save(record).await,
        };
        note_save_result(&result);
        result
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Database(store) => store.load(id).await,
            Self::Redis(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        note_deleted(id);
        match self {
            Self::Database(store) => store.delete(id).await,
            Self::Redis(store) => store.delete(id).await,
        }
    }
}

#[derive(Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    /// For `create` alone: a session that was never saved is one its user simply logs in to
    /// again (`db::connect_fail_safe`). Saving and deleting, which can end or bind a session,
    /// go through `db`.
    db_fail_safe: DatabaseConnection,
    secrets: Arc<dyn SecretSource>,
    /// The real clock, which `expiry_date` is measured on (see the module comment).
    system_clock: Arc<dyn Clock>,
    /// On SQLite: the loads of `load`, without a trip through sqlx's worker threads.
    reads: Option<Arc<SqliteReads>>,
    /// On SQLite: `create`'s insert likewise, when the write lock is free.
    db_fail_safe_inline: Option<Arc<SqliteFailSafeWrites>>,
    /// What records' data texts parsed to, by their text (`copy::ParsedByText`, ADR 36).
    parsed_records: Arc<copy::ParsedByText<std::collections::HashMap<String, serde_json::Value>>>,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSessionStore").finish_non_exhaustive()
    }
}

/// A database error as a store error, marked when the database could not be reached so that the
/// client is answered 503 rather than 500.
fn backend(err: sea_orm::DbErr) -> session_store::Error {
    if crate::db::unavailable(&err) {
        session_store::Error::Backend(format!("{DATABASE_UNAVAILABLE}{err}"))
    } else {
        session_store::Error::Backend(err.to_string())
    }
}

impl DbSessionStore {
    /// `reads`, `db_fail_safe_inline`: present when the database is an SQLite file.
    pub fn new(
        db: DatabaseConnection,
        db_fail_safe: DatabaseConnection,
        secrets: Arc<dyn SecretSource>,
        system_clock: Arc<dyn Clock>,
        reads: Option<Arc<SqliteReads>>,
        db_fail_safe_inline: Option<Arc<SqliteFailSafeWrites>>,
    ) -> Self {
        let parsed_records = Arc::default();
        Self { db, db_fail_safe, secrets, system_clock, reads, db_fail_safe_inline, parsed_records }
    }

    /// The row of session `id_hash`: inline on SQLite, through sea-orm when that is not possible.
    async fn find(&self, id_hash: String) -> session_store::Result<Option<(String, i64)>> {
        if let Some(row) = try_inline(self.reads.as_deref(), |reads| reads.session(&id_hash)) {
            return Ok(row.map(|r| (r.data, r.expires_at)));
        }
        // `all`, not `one`: the id is the primary key, so at most one row comes back either way,
        // but `one` adds `LIMIT ?` with the limit as a bound parameter, and SQLite then marks its
        // prepared statement to be re-prepared whenever that parameter is bound again — on every
        // load, the one read of every session-authenticated request.
        Ok(sessions::Entity::find_by_id(id_hash)
            .all(&self.db)
            .await
            .map_err(backend)?
            .into_iter()
            .next()
            .map(|row| (row.data, row.expires_at)))
    }

    fn fresh_id(&self) -> session_store::Result<Id> {
        let mut bytes = [0u8; 16];
        self.secrets.fill(&mut bytes).map_err(|e| session_store::Error::Backend(e.to_string()))?;
        Ok(Id(i128::from_le_bytes(bytes)))
    }

    fn row(record: &Record) -> session_store::Result<sessions::ActiveModel> {
        Ok(Self::to_set(Self::model(record)?))
    }

    /// Every column set, as an insert or update writes it.
    fn to_set(row: sessions::Model) -> sessions::ActiveModel {
        sessions::ActiveModel {
            id_hash: Set(row.id_hash),
            data: Set(row.data),
            expires_at: Set(row.expires_at),
            user_id: Set(row.user_id),
            device_pk: Set(row.device_pk),
            handle: Set(row.handle),
        }
    }

    fn model(record: &Record) -> session_store::Result<sessions::Model> {
        let owner = record
            .data
            .get(OWNER_KEY)
            .map(|value| serde_json::from_value::<SessionOwner>(value.clone()))
            .transpose()
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        Ok(sessions::Model {
            id_hash: storage_hash(&record.id.to_string()),
            data: serde_json::to_string(&copy::StoredData(&record.data))
                .map_err(|e| session_store::Error::Encode(e.to_string()))?,
            expires_at: record.expiry_date.unix_timestamp(),
            user_id: owner.as_ref().map(|o| o.user_id),
            device_pk: owner.as_ref().and_then(|o| o.device_pk),
            handle: owner.map(|o| o.handle),
        })
    }

    /// Removes rows whose record expiry has passed on the real clock.
    pub async fn delete_expired(&self) -> Result<u64, sea_orm::DbErr> {
        let now = self.system_clock.now().unix_timestamp();
        let deleted = sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}

/// `create`'s insert, inline (`sqlite_inline`): the rows inserted, 0 when the id is taken.
fn insert_unless_taken(
    writes: &SqliteFailSafeWrites,
    row: &sessions::Model,
) -> rusqlite::Result<u64> {
    let inserted = writes.execute(
        "INSERT INTO sessions (id_hash, data, expires_at, user_id, device_pk, handle) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id_hash) DO NOTHING",
        rusqlite::params![
            row.id_hash,
            row.data,
            row.expires_at,
            row.user_id,
            row.device_pk,
            row.handle,
        ],
    )?;
    Ok(u64::try_from(inserted).unwrap_or(u64::MAX))
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // tower-sessions proposes an id from its own generator; ours comes from the injected source.
        // A collision among 128-bit ids is not expected, but an insert that would overwrite someone
        // else's session must never happen, so a taken id is simply drawn again.
        loop {
            record.id = self.fresh_id()?;
            let row = Self::model(record)?;
            let inline = try_inline_write(self.db_fail_safe_inline.as_deref(), |writes| {
                insert_unless_taken(writes, &row)
            });
            let inserted = match inline {
                Some(inserted) => inserted,
                None => sessions::Entity::insert(Self::to_set(row))
                    .on_conflict(
                        OnConflict::column(sessions::Column::IdHash).do_nothing().to_owned(),
                    )
                    .exec_without_returning(&self.db_fail_safe)
                    .await
                    .map_err(backend)?,
            };
            if inserted == 1 {
                return Ok(());
            }
        }
    }

    /// Updates the session's row if it still exists; a session ended meanwhile stays ended.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = Self::row(record)?;
        let updated = sessions::Entity::update_many()
            .set(sessions::ActiveModel { id_hash: sea_orm::NotSet, ..row.clone() })
            .filter(sessions::Column::IdHash.eq(storage_hash(&record.id.to_string())))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if updated.rows_affected == 0 {
            // Not an error: the request itself succeeded, only its session had ended under it.
            note_save_found_no_session();
            tracing::debug!("session ended while the request ran; not written back");
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some((data, expires_at)) = self.find(storage_hash(&id.to_string())).await? else {
            return Ok(None);
        };
        let data = self
            .parsed_records
            .get_or_parse(data, copy::load_data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sessions::Entity::delete_by_id(storage_hash(&id.to_string()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Cookie settings shared by every scheme's session cookie.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    /// `Secure` and the `__Host-` prefix: set whenever the public URL is https.
    pub secure: bool,
    /// How long the browser keeps the cookie; the server's own timeouts decide validity.
    pub max_age: time::Duration,
}

impl CookiePolicy {
    /// `__Host-` binds the cookie to this exact host over https, with `Path=/` and no `Domain`, so
    /// a sibling subdomain cannot plant or overwrite it.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.secure { format!("__Host-{base}") } else { base.to_owned() }
    }

    /// `router` with the session for cookie `base_name`, and [`forget_ended_session`] around it.
    pub fn with_session<S: Clone + Send + Sync + 'static>(
        &self,
        router: utoipa_axum::router::OpenApiRouter<S>,
        store: AnySessionStore,
        base_name: &str,
    ) -> utoipa_axum::router::OpenApiRouter<S> {
        // One `.layer` for both: each `Router::layer` adds a boxed `Route` that axum clones, with
        // everything under it, on every request (see `app::router`).
        router.layer(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    (self.cookie_name(base_name), self.secure),
                    forget_ended_session,
                ))
                .layer(self.layer(store, base_name)),
        )
    }

    fn layer(
        &self,
        store: AnySessionStore,
        base_name: &str,
    ) -> SessionManagerLayer<AnySessionStore> {
        SessionManagerLayer::new(store)
            .with_name(self.cookie_name(base_name))
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_secure(self.secure)
            .with_expiry(Expiry::OnInactivity(self.max_age))
    }
}
