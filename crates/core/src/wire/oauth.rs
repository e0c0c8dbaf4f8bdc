//! Access + refresh tokens: `/api/oauth/*`, `/api/jwt/me` and `/.well-known/jwks.json`. The token
//! and revocation requests carry passwords and refresh tokens and stay with the server.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::wire::session::UserView;

/// What an access token says: the JWT's payload, which the server signs and the client may read
/// (it is only base64url) but never needs to trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// The refresh-token family this token was minted from (the server's `family_handle`): ending
    /// that login refuses the token.
    pub sid: String,
    pub preferred_username: String,
    /// Present when the token is bound to a key (DPoP, RFC 9449 §6): it is then accepted only
    /// with a proof signed by the key this thumbprint names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800's confirmation claim, as RFC 9449 §6.1 uses it: the thumbprint (RFC 7638) of the key
/// the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`, or `DPoP` when the request carried a proof: the access token is then bound to
    /// the proof's key and is sent as `Authorization: DPoP`, each time with a fresh proof.
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// Replaces the one the client holds: the old one is spent. Absent when the request asked for
    /// the browser variant (`X-Refresh-Cookie: 1`): the token then travels only in the HttpOnly
    /// cookie `tl_refresh`, out of the page's JavaScript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub refresh_expires_in: i64,
}

/// Where a token of a refresh family stands, as `GET /api/oauth/family` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyTokenState {
    /// The one token of the family that may still be exchanged.
    Active,
    /// Exchanged for its child.
    Rotated,
    /// Its family was revoked.
    Revoked,
}

impl FamilyTokenState {
    /// The wire form, as in `{"state": "..."}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FamilyTokenState::Active => "active",
            FamilyTokenState::Rotated => "rotated",
            FamilyTokenState::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilyToken {
    /// The first characters of the token's SHA-256: enough to tell tokens apart, useless to a thief.
    pub hash_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub issued_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// `active`, `rotated` or `revoked`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: FamilyTokenState,
    /// This is the token the request carried.
    pub presented: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Family {
    /// `null`, or why the family was revoked: `revoked` (logout) or `reused`.
    pub revoked_reason: Option<String>,
    /// The thumbprint of the key the family is bound to (DPoP): it is refreshed only with a proof
    /// by that key. Absent for a bearer family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    pub tokens: Vec<FamilyToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The thumbprint of the key the token is bound to (DPoP), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BearerMe {
    pub user: UserView,
    pub token: TokenInfo,
}

/// A JSON Web Key (RFC 8037 for Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub usage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}
