//! What every handler can reach. Everything here is immutable, shared through the database, or a
//! cache that only lags the database (ended logins, keys) or remembers what a pure function gave
//! for the same input (verified signatures, parsed session copies); nothing a second server
//! instance would need to agree on lives only in this process.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokenlab_core::bearer::TokenPolicy;
use tokenlab_core::device::DevicePolicy;
use tokenlab_core::random::SecretSource;
use tokenlab_core::session::SessionPolicy;
use tokenlab_core::submit::SubmitPolicy;
use tokenlab_core::{Clock, OffsetClock};

use crate::auth::device::DeviceAuth;
use crate::auth::password::LoginLimits;
use crate::auth::revocation::RevokedFamilies;
use crate::auth::session::SessionAuth;
use crate::auth::verified_tokens::VerifiedTokens;
use crate::config::Settings;
use crate::hasher::PasswordHasher;
use crate::keys::KeyStore;
use crate::sessions::copy::ParsedByText;
use crate::sessions::{AnySessionStore, CookiePolicy};
use crate::sqlite_inline::{SqliteFailSafeWrites, SqliteReads};

pub type DemoClock = OffsetClock<Arc<dyn Clock>>;

/// Cloned into every request (axum's `State`), so a clone is one reference count, not a copy of
/// each field's.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub db: DatabaseConnection,
    /// The same database, for the few writes whose loss in a power cut fails safe: on an SQLite
    /// file their commits skip the flush to disk (`db::connect_fail_safe`, ADR 33). Never for an
    /// ending.
    pub db_fail_safe: DatabaseConnection,
    /// On an SQLite file: reads that stand alone, inline in the request's task (`sqlite_inline`).
    pub sqlite_reads: Option<Arc<SqliteReads>>,
    /// On an SQLite file: the writes of `db_fail_safe`, inline in the request's task when the
    /// write lock is free (`sqlite_inline`).
    pub db_fail_safe_inline: Option<Arc<SqliteFailSafeWrites>>,
    /// The clock every rule reads. In the demo profile it is `demo_clock`.
    pub clock: Arc<dyn Clock>,
    /// Present only in the demo profile; the demo endpoints exist only when it is.
    pub demo_clock: Option<Arc<DemoClock>>,
    pub hasher: PasswordHasher,
    /// The signing and refresh-derivation keys: in the database (demo) or from `--keys-dir`.
    pub keys: KeyStore,
    pub settings: Arc<Settings>,
    pub public_origin: Arc<str>,
    /// Origins allowed to send state-changing requests (see `guard::reject_cross_site`).
    pub allowed_origins: Arc<[String]>,
    pub secrets: Arc<dyn SecretSource>,
    pub session_store: AnySessionStore,
    pub session_policy: SessionPolicy,
    pub cookies: CookiePolicy,
    pub login_limits: LoginLimits,
    pub submit_policy: SubmitPolicy,
    pub device_policy: DevicePolicy,
    pub token_policy: TokenPolicy,
    /// A cache of the database, reloaded every quarter second: see `revocation`.
    pub revoked_families: Arc<RevokedFamilies>,
    /// Access tokens whose signature this instance has checked: see `verified_tokens`.
    pub verified_tokens: Arc<VerifiedTokens>,
    /// What the session scheme's copies parsed to, by their text (`sessions::copy`, ADR 36).
    pub parsed_session_copies: Arc<ParsedByText<SessionAuth>>,
    /// What the device scheme's copies parsed to, likewise.
    pub parsed_device_copies: Arc<ParsedByText<DeviceAuth>>,
}
