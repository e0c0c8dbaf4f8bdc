//! The demo profile's keys: generated on first start from the injected `SecretSource`, kept in the
//! database (never in the repository), read from it at every use so that the lab's rotation and
//! retirement on one instance hold on all of them at once.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, Set,
};
use tokenlab_core::Timestamp;
use tokenlab_core::random::SecretSource;
use tokenlab_core::wire::Jwk;

use crate::entities::server_keys;
use crate::error::ApiError;
use crate::secrets::new_token;

const SIGNING: &str = "ed25519";
const HMAC: &str = "hmac";

/// Makes sure a signing key and an HMAC key exist.
pub async fn ensure(
    db: &impl sea_orm::ConnectionTrait,
    secrets: &dyn SecretSource,
    now: Timestamp,
) -> Result<(), ApiError> {
    for kind in [SIGNING, HMAC] {
        let existing = server_keys::Entity::find()
            .filter(server_keys::Column::Kind.eq(kind))
            .filter(server_keys::Column::RetiredAt.is_null())
            .one(db)
            .await?;
        if existing.is_none() {
            create(db, secrets, kind, now).await?;
        }
    }
    Ok(())
}

async fn create(
    db: &impl sea_orm::ConnectionTrait,
    secrets: &dyn SecretSource,
    kind: &str,
    now: Timestamp,
) -> Result<String, ApiError> {
    let mut seed = [0u8; 32];
    secrets.fill(&mut seed).map_err(ApiError::internal)?;
    let (secret, public) = if kind == SIGNING {
        let key = SigningKey::from_bytes(&seed);
        let der = key.to_pkcs8_der().map_err(|e| ApiError::internal(e.to_string()))?;
        (
            STANDARD.encode(der.as_bytes()),
            Some(URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())),
        )
    } else {
        (STANDARD.encode(seed), None)
    };
    // Short, random, and meaningless: a kid names a key, it must not describe it.
    let kid = new_token(secrets)?[..16].to_owned();
    server_keys::ActiveModel {
        kid: Set(kid.clone()),
        kind: Set(kind.to_owned()),
        secret: Set(secret),
        public: Set(public),
        created_at: Set(now.unix_timestamp()),
        retired_at: Set(None),
    }
    .insert(db)
    .await?;
    tracing::info!(kid, kind, "server key created");
    Ok(kid)
}

/// How often every instance re-reads the demo's keys: a rotation or retirement on one instance
/// holds on every other within this plus one query (the instance that made it reloads at once).
pub const RELOAD_EVERY: Duration = Duration::from_millis(500);

/// The demo's keys as last read from the database, so that signing and verifying never cost a
/// statement. Reloaded in the background every [`RELOAD_EVERY`], and at once by the instance that
/// changed them.
#[derive(Default)]
pub struct DatabaseKeys {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Handed out before a reload reads: a later reload's picture replaces an earlier one, never
    /// the other way (the same rule as the revoked-families cache).
    tickets: AtomicU64,
}

#[derive(Default)]
pub struct Snapshot {
    ticket: u64,
    /// The newest signing key not retired.
    pub signing: Option<(String, EncodingKey)>,
    /// Every signing key not retired, by `kid`. Only keys in the table can be selected: a `kid`
    /// never points anywhere else (no `jku`, no embedded `jwk`).
    pub verifying: HashMap<String, DecodingKey>,
    /// The oldest HMAC key not retired (it is never rotated: children derived with it must stay
    /// derivable).
    pub hmac: Option<Arc<[u8]>>,
    /// What `/.well-known/jwks.json` publishes, newest first.
    pub jwks: Vec<Jwk>,
}

impl DatabaseKeys {
    pub fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(snapshot) => snapshot.clone(),
            // A writer panicked mid-swap; the snapshot it guarded is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    #[tracing::instrument(name = "keys.reload", level = "debug", skip_all)]
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<(), ApiError> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let rows = server_keys::Entity::find()
            .filter(server_keys::Column::RetiredAt.is_null())
            .order_by_desc(server_keys::Column::CreatedAt)
            .order_by_desc(server_keys::Column::Kid)
            .all(db)
            .await?;
        let mut fresh = Snapshot { ticket, ..Snapshot::default() };
        for row in rows {
            match row.kind.as_str() {
                SIGNING => {
                    let der = STANDARD.decode(&row.secret).map_err(ApiError::internal)?;
                    if fresh.signing.is_none() {
                        fresh.signing = Some((row.kid.clone(), EncodingKey::from_ed_der(&der)));
                    }
                    let Some(public) = row.public else { continue };
                    let bytes = URL_SAFE_NO_PAD.decode(&public).map_err(ApiError::internal)?;
                    fresh.verifying.insert(row.kid.clone(), DecodingKey::from_ed_der(&bytes));
                    fresh.jwks.push(super::ed25519_jwk(row.kid, public));
                }
                // Rows come newest first; the oldest HMAC key is the one in force.
                HMAC => {
                    let bytes = STANDARD.decode(&row.secret).map_err(ApiError::internal)?;
                    fresh.hmac = Some(bytes.into());
                }
                other => tracing::warn!(kind = other, kid = row.kid, "unknown server key kind"),
            }
        }
        let mut installed = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if fresh.ticket > installed.ticket {
            *installed = Arc::new(fresh);
        }
        Ok(())
    }

    /// Reloads every [`RELOAD_EVERY`] until the task is aborted.
    pub async fn keep_loading(self: Arc<Self>, db: DatabaseConnection) {
        let mut every = tokio::time::interval(RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(err) = self.reload(&db).await {
                tracing::warn!(error = %err, "reloading the signing keys failed; keeping the last set");
            }
        }
    }
}

/// A new signing key takes over signing; the previous one keeps verifying until retired.
pub async fn rotate(
    db: &DatabaseConnection,
    secrets: &dyn SecretSource,
    now: Timestamp,
) -> Result<String, ApiError> {
    // "Newest signs" must be unambiguous, also for two rotations within one second.
    let newest = server_keys::Entity::find()
        .filter(server_keys::Column::Kind.eq(SIGNING))
        .order_by_desc(server_keys::Column::CreatedAt)
        .one(db)
        .await?
        .map_or(i64::MIN, |k| k.created_at);
    let created_at = now.unix_timestamp().max(newest.saturating_add(1));
    let created = Timestamp::from_unix_timestamp(created_at).map_err(ApiError::internal)?;
    create(db, secrets, SIGNING, created).await
}

/// Retires every signing key in force (through `conn`, so inside the caller's transaction): every
/// access token issued so far is refused from then on. How many were retired; [`ensure`] makes
/// the next one.
pub async fn retire_every_signing_key(
    conn: &impl sea_orm::ConnectionTrait,
    now: Timestamp,
) -> Result<u64, ApiError> {
    let retired = server_keys::Entity::update_many()
        .col_expr(server_keys::Column::RetiredAt, Expr::value(now.unix_timestamp()))
        .filter(server_keys::Column::Kind.eq(SIGNING))
        .filter(server_keys::Column::RetiredAt.is_null())
        .exec(conn)
        .await?;
    Ok(retired.rows_affected)
}

/// Tokens signed with a retired key are refused from now on. Returns whether a key was retired.
pub async fn retire(db: &DatabaseConnection, kid: &str, now: Timestamp) -> Result<bool, ApiError> {
    let retired = server_keys::Entity::update_many()
        .col_expr(server_keys::Column::RetiredAt, Expr::value(now.unix_timestamp()))
        .filter(server_keys::Column::Kid.eq(kid))
        .filter(server_keys::Column::Kind.eq(SIGNING))
        .filter(server_keys::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    Ok(retired.rows_affected == 1)
}
