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

pub use database::{ensure, retire, rotate};
use files::KeyDirectory;

use crate::error::ApiError;

/// Where this server's keys live; chosen once at start by the profile and `--keys-dir`.
#[derive(Clone)]
pub enum KeyStore {
    Database,
    Files(Arc<KeyDirectory>),
}

impl KeyStore {
    /// The `kid` and key new access tokens are signed with: the newest key.
    pub async fn signing_key(
        &self,
        db: &DatabaseConnection,
    ) -> Result<(String, EncodingKey), ApiError> {
        match self {
            Self::Database => database::signing_key(db).await,
            Self::Files(dir) => {
                let newest = dir.newest();
                Ok((newest.kid.clone(), newest.encoding.clone()))
            }
        }
    }

    /// The verification key a token's `kid` names, if it is one of ours and still in force. Only
    /// our own keys can be selected: a `kid` never points anywhere else (no `jku`, no embedded
    /// `jwk`).
    pub async fn verifying_key(
        &self,
        db: &DatabaseConnection,
        kid: &str,
    ) -> Result<Option<DecodingKey>, ApiError> {
        match self {
            Self::Database => database::verifying_key(db, kid).await,
            Self::Files(dir) => Ok(dir.by_kid(kid).map(|key| key.decoding.clone())),
        }
    }

    pub async fn hmac_key(&self, db: &DatabaseConnection) -> Result<Vec<u8>, ApiError> {
        match self {
            Self::Database => database::hmac_key(db).await,
            Self::Files(dir) => Ok(dir.refresh_derivation_key().to_vec()),
        }
    }

    /// The public keys that verify access tokens, as RFC 7517 publishes them, newest first.
    pub async fn jwks(&self, db: &DatabaseConnection) -> Result<JwkSet, ApiError> {
        match self {
            Self::Database => database::jwks(db).await,
            Self::Files(dir) => Ok(JwkSet {
                keys: dir
                    .newest_first()
                    .map(|key| ed25519_jwk(key.kid.clone(), key.public_x.clone()))
                    .collect(),
            }),
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
