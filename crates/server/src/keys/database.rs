//! The demo profile's keys: generated on first start from the injected `SecretSource`, kept in the
//! database (never in the repository), read from it at every use so that the lab's rotation and
//! retirement on one instance hold on all of them at once.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, Set,
};
use tokenlab_core::Timestamp;
use tokenlab_core::random::SecretSource;
use tokenlab_core::wire::JwkSet;

use crate::entities::server_keys;
use crate::error::ApiError;
use crate::secrets::new_token;

const SIGNING: &str = "ed25519";
const HMAC: &str = "hmac";

/// Makes sure a signing key and an HMAC key exist.
pub async fn ensure(
    db: &DatabaseConnection,
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
    db: &DatabaseConnection,
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

/// The key new access tokens are signed with: the newest signing key not retired.
pub async fn signing_key(db: &DatabaseConnection) -> Result<(String, EncodingKey), ApiError> {
    let row = server_keys::Entity::find()
        .filter(server_keys::Column::Kind.eq(SIGNING))
        .filter(server_keys::Column::RetiredAt.is_null())
        .order_by_desc(server_keys::Column::CreatedAt)
        .order_by_desc(server_keys::Column::Kid)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal("no signing key"))?;
    let der = STANDARD.decode(&row.secret).map_err(ApiError::internal)?;
    Ok((row.kid, EncodingKey::from_ed_der(&der)))
}

/// The verification key a token's `kid` names, if it is one of ours and not retired. Only keys in
/// the table can be selected: a `kid` never points anywhere else (no `jku`, no embedded `jwk`).
pub async fn verifying_key(
    db: &DatabaseConnection,
    kid: &str,
) -> Result<Option<DecodingKey>, ApiError> {
    let row = server_keys::Entity::find_by_id(kid.to_owned())
        .filter(server_keys::Column::Kind.eq(SIGNING))
        .filter(server_keys::Column::RetiredAt.is_null())
        .one(db)
        .await?;
    let Some(public) = row.and_then(|r| r.public) else { return Ok(None) };
    let bytes = URL_SAFE_NO_PAD.decode(public).map_err(ApiError::internal)?;
    Ok(Some(DecodingKey::from_ed_der(&bytes)))
}

pub async fn hmac_key(db: &DatabaseConnection) -> Result<Vec<u8>, ApiError> {
    let row = server_keys::Entity::find()
        .filter(server_keys::Column::Kind.eq(HMAC))
        .filter(server_keys::Column::RetiredAt.is_null())
        .order_by_asc(server_keys::Column::CreatedAt)
        .order_by_asc(server_keys::Column::Kid)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal("no hmac key"))?;
    STANDARD.decode(row.secret).map_err(ApiError::internal)
}

/// The public keys that verify access tokens, as RFC 7517 publishes them.
pub async fn jwks(db: &DatabaseConnection) -> Result<JwkSet, ApiError> {
    let rows = server_keys::Entity::find()
        .filter(server_keys::Column::Kind.eq(SIGNING))
        .filter(server_keys::Column::RetiredAt.is_null())
        .order_by_desc(server_keys::Column::CreatedAt)
        .all(db)
        .await?;
    let keys =
        rows.into_iter().filter_map(|row| Some(super::ed25519_jwk(row.kid, row.public?))).collect();
    Ok(JwkSet { keys })
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
