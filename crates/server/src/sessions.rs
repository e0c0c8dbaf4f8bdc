//! tower-sessions on the application database.
//!
//! Why a store of our own rather than `tower-sessions-sqlx-store`: that crate brings sqlx 0.8 beside
//! sea-orm's sqlx 0.9, so two pools and two SQLite drivers on one database. This store uses the
//! server's one sea-orm connection, on SQLite and PostgreSQL alike, and adds two things the crate
//! does not do: ids are drawn from the injected [`SecretSource`], and rows are keyed by the SHA-256
//! of the id, so the table never holds a usable cookie value.
//!
//! Expiry: tower-sessions computes a record's `expiry_date` from the system clock. tokenlab's own
//! idle and absolute timeouts (`core::session`) are kept in the session data and checked against
//! the injected clock by the handlers; the record's `expiry_date` only tells the garbage collector
//! when a row is certainly dead.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, Set};
use tokenlab_core::Clock;
use tokenlab_core::random::SecretSource;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::entities::sessions;
use crate::secrets::storage_hash;

#[derive(Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    secrets: Arc<dyn SecretSource>,
    /// The real clock, which `expiry_date` is measured on (see the module comment).
    system_clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSessionStore").finish_non_exhaustive()
    }
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

impl DbSessionStore {
    pub fn new(
        db: DatabaseConnection,
        secrets: Arc<dyn SecretSource>,
        system_clock: Arc<dyn Clock>,
    ) -> Self {
        Self { db, secrets, system_clock }
    }

    fn fresh_id(&self) -> session_store::Result<Id> {
        let mut bytes = [0u8; 16];
        self.secrets.fill(&mut bytes).map_err(backend)?;
        Ok(Id(i128::from_le_bytes(bytes)))
    }

    fn row(record: &Record) -> session_store::Result<sessions::ActiveModel> {
        Ok(sessions::ActiveModel {
            id_hash: Set(storage_hash(&record.id.to_string())),
            data: Set(serde_json::to_string(&record.data)
                .map_err(|e| session_store::Error::Encode(e.to_string()))?),
            expires_at: Set(record.expiry_date.unix_timestamp()),
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

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // tower-sessions proposes an id from its own generator; ours comes from the injected source.
        // A collision among 128-bit ids is not expected, but an insert that would overwrite someone
        // else's session must never happen, so a taken id is simply drawn again.
        loop {
            record.id = self.fresh_id()?;
            let inserted = sessions::Entity::insert(Self::row(record)?)
                .on_conflict(OnConflict::column(sessions::Column::IdHash).do_nothing().to_owned())
                .exec_without_returning(&self.db)
                .await
                .map_err(backend)?;
            if inserted == 1 {
                return Ok(());
            }
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        sessions::Entity::insert(Self::row(record)?)
            .on_conflict(
                OnConflict::column(sessions::Column::IdHash)
                    .update_columns([sessions::Column::Data, sessions::Column::ExpiresAt])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = sessions::Entity::find_by_id(storage_hash(&id.to_string()))
            .one(&self.db)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(row.expires_at)
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

    pub fn layer(
        &self,
        store: DbSessionStore,
        base_name: &str,
    ) -> SessionManagerLayer<DbSessionStore> {
        SessionManagerLayer::new(store)
            .with_name(self.cookie_name(base_name))
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_secure(self.secure)
            .with_expiry(Expiry::OnInactivity(self.max_age))
    }
}
