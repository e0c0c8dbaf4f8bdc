//! A user's sign-ins across every scheme: `/api/sessions*`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::signout::Scheme;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionList {
    pub sessions: Vec<ActiveSession>,
}

/// One entry of `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveSession {
    /// Opaque: `s_…`, `d_…` or `r_…`. Names the sign-in for `DELETE /api/sessions/{id}`; it is
    /// not a credential and cannot be turned into one.
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "session"))]
    pub scheme: Scheme,
    /// What it is, in words: "session login", "hardened device", "refresh family", …
    pub label: String,
    pub user_agent: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_seen_at: Option<Timestamp>,
    /// Sliding: the session's idle expiry, or the refresh token's (each use issues a new one).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub idle_expires_at: Option<Timestamp>,
    /// Fixed at login: the session's absolute timeout, the hardened device token's end, the refresh
    /// family's end. `null` for a device token as written, which never expires.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub absolute_expires_at: Option<Timestamp>,
    /// The sign-in this request was made with.
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeAll {
    /// Spare the sign-in this request is made with.
    pub keep_current: bool,
}

/// How many sign-ins a sign-out ended, per scheme.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ended {
    /// Server sessions deleted, of both cookies.
    pub sessions: u64,
    pub devices: u64,
    pub refresh_families: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedAll {
    pub ended: Ended,
    /// How long another instance may still accept an access token of an ended login (this one
    /// refuses it at once).
    pub access_token_bound_ms: i64,
}
