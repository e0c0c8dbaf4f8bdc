//! Server-held keys: the Ed25519 keys that sign access tokens, and the HMAC key that derives a
//! refresh token's child. They have two homes. The demo profile generates them into its database,
//! where the lab rotates and retires them ([`database`]). Production reads them from `--keys-dir`
//! once, at start ([`files`]): no key sits in the database in clear, and rotating or retiring a key
//! is a file operation followed by a restart, the same on every instance.

mod database;
pub mod files;

use std::sync::Arc;

use jsonwebtoken::{DecodingKey, EncodingKey};
use sea_orm::DatabaseConnection;
use tokenlab_core::wire::{Jwk, JwkSet};

pub use database::{DatabaseKeys, ensure, retire, retire_every_signing_key, rotate};
use files::KeyDirectory;

use crate::error::ApiError;

/// Where this server's keys live; chosen once at start by the profile and `--keys-dir`. Either
/// way they are in memory when a token is signed or verified: no statement per request.
#[derive(Clone)]
pub enum KeyStore {
    Database(Arc<DatabaseKeys>),
    Files(Arc<KeyDirectory>),
}

impl KeyStore {
    /// The `kid` and key new access tokens are signed with: the newest key.
    pub fn signing_key(&self) -> Result<(String, EncodingKey), ApiError> {
        match self {
            Self::Database(keys) => {
                keys.current().signing.clone().ok_or_else(|| ApiError::internal("no signing key"))
            }
            Self::Files(dir) => {
                let newest = dir.newest();
                Ok((newest.kid.clone(), newest.encoding.clone()))
            }
        }
    }

    /// The verification key a token's `kid` names, if it is one of ours and still in force.
    pub fn verifying_key(&self, kid: &str) -> Option<DecodingKey> {
        match self {
            Self::Database(keys) => keys.current().verifying.get(kid).cloned(),
            Self::Files(dir) => dir.by_kid(kid).map(|key| key.decoding.clone()),
        }
    }

    /// Whether `kid` still verifies tokens (a token verified earlier with a key retired since is
    /// no longer good).
    pub fn in_force(&self, kid: &str) -> bool {
        match self {
            Self::Database(keys) => keys.current().verifying.contains_key(kid),
            Self::Files(dir) => dir.by_kid(kid).is_some(),
        }
    }

    pub fn hmac_key(&self) -> Result<Vec<u8>, ApiError> {
        match self {
            Self::Database(keys) => keys
                .current()
                .hmac
                .as_deref()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| ApiError::internal("no refresh-derivation key")),
            Self::Files(dir) => Ok(dir.refresh_derivation_key().to_vec()),
        }
    }

    /// The public keys that verify access tokens, as RFC 7517 publishes them, newest first.
    pub fn jwks(&self) -> JwkSet {
        let keys = match self {
            Self::Database(keys) => keys.current().jwks.clone(),
            Self::Files(dir) => dir
                .newest_first()
                .map(|key| ed25519_jwk(key.kid.clone(), key.public_x.clone()))
                .collect(),
        };
        JwkSet { keys }
    }

    /// Re-reads the keys after this instance changed them (the demo's), so it signs with a new key
    /// and refuses a retired one at once; the other instances follow within `database::RELOAD_EVERY`.
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<(), ApiError> {
        match self {
            Self::Database(keys) => keys.reload(db).await,
            Self::Files(_) => Ok(()),
        }
    }

    /// The background reload of the demo's keys, if they live in the database.
    pub fn keep_loading(&self, db: DatabaseConnection) -> Option<impl Future<Output = ()> + use<>> {
        match self {
            Self::Database(keys) => Some(keys.clone().keep_loading(db)),
            Self::Files(_) => None,
        }
    }
}

fn ed25519_jwk(kid: String, x: String) -> Jwk {
    Jwk {
        kty: "OKP".to_owned(),
        crv: "Ed25519".to_owned(),
        x,
        kid,
        alg: "EdDSA".to_owned(),
        usage: "sig".to_owned(),
    }
}
