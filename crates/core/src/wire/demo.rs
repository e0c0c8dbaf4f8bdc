//! The lab's controls, demo profile only: `/api/demo/*` — the clock, signing keys, reset, session
//! expiry, the stateless-JWT contrast, token-policy presets and the server-state inspector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::bearer::TokenPolicy;
use crate::device::DeviceMode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockState {
    /// The server's "now", which every expiry is measured against.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub now: Timestamp,
    /// How far the demo clock is ahead of the real time.
    pub offset_seconds: i64,
}

/// Exactly one of the two fields; its schema (`wire::schemas::clock_change`) says so, with the
/// clock's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    /// Seconds to move forward: 1 up to a year.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::wire::numbers::optional_whole_number"
    )]
    pub advance_seconds: Option<i64>,
    /// `true` returns to the real time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ClockChange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::wire::schemas::clock_change().into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ClockChange {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewKey {
    /// The key that signs from now on.
    pub kid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetireKey {
    pub kid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetDone {
    /// Rows removed, by table.
    pub removed: BTreeMap<String, u64>,
    pub clock: ClockState,
    /// The token-policy preset in force again: the one the server was started with.
    pub token_policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsExpired {
    /// Server sessions of every scheme and user that were dropped.
    pub expired: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatelessVerdict {
    /// Signature, issuer, audience and time claims are fine; nothing else was asked.
    pub accepted: bool,
    /// Unix seconds: until then a resource server like this one keeps accepting the token,
    /// whatever happened to the login.
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyPreset {
    pub name: String,
    /// Where the numbers come from.
    pub source: String,
    pub access_lifetime_seconds: i64,
    pub refresh_idle_seconds: i64,
    pub refresh_absolute_seconds: i64,
}

impl From<TokenPolicy> for PolicyPreset {
    fn from(p: TokenPolicy) -> Self {
        Self {
            name: p.name.to_owned(),
            source: p.source.to_owned(),
            access_lifetime_seconds: p.access_lifetime.whole_seconds(),
            refresh_idle_seconds: p.refresh_idle.whole_seconds(),
            refresh_absolute_seconds: p.refresh_absolute.whole_seconds(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyChoice {
    /// The preset tokens are issued under now.
    pub current: PolicyPreset,
    pub presets: Vec<PolicyPreset>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChoosePolicy {
    /// One of the names `GET /api/demo/policy` lists.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::policy_name))]
    pub name: String,
}

/// The inspector's query string: `GET /api/demo/inspector?username=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct InspectorQuery {
    /// Whose rows to show. Default: the demo account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerState {
    pub user: InspectedUser,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub now: Timestamp,
    /// Server sessions of both cookies: `tl_session` (scheme 2) and `tl_device` (scheme 1).
    pub sessions: Vec<InspectedSession>,
    pub devices: Vec<InspectedDevice>,
    /// Refresh-token families, each with its chain of tokens, oldest first.
    pub refresh_families: Vec<InspectedFamily>,
    pub form_tokens: Vec<InspectedFormToken>,
    pub idempotency_keys: Vec<InspectedIdempotencyKey>,
    pub orders: Vec<InspectedOrder>,
    /// Server-wide, not per user: requests refused as cross-site since the last reset. The attack
    /// lab reads it, because the refusal itself lands in a frame of another origin.
    pub cross_site_refusals: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedUser {
    pub id: i64,
    pub username: String,
}

/// Where a server session stands on the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectedSessionState {
    Live,
    IdleExpired,
    AbsoluteExpired,
}

impl InspectedSessionState {
    /// The wire form, as in `{"state": "..."}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InspectedSessionState::Live => "live",
            InspectedSessionState::IdleExpired => "idle_expired",
            InspectedSessionState::AbsoluteExpired => "absolute_expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedSession {
    /// The cookie whose value is this session's id.
    pub cookie: String,
    /// The row's key: SHA-256 of the session id, first characters only.
    pub id_hash_prefix: String,
    /// Device sessions: which device they belong to.
    pub device_id: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub times: InspectedTimes,
    /// `live`, `idle_expired` or `absolute_expired`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: InspectedSessionState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedTimes {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub idle_expires_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub absolute_expires_at: Timestamp,
}

/// Where a device stands: the verdict of `device::check_device` on the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectedDeviceState {
    Live,
    Expired,
    Revoked,
}

impl InspectedDeviceState {
    /// The wire form, as in `{"state": "..."}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InspectedDeviceState::Live => "live",
            InspectedDeviceState::Expired => "expired",
            InspectedDeviceState::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedDevice {
    pub id: i64,
    /// Masked for as-written devices, where the device id is the token.
    pub device_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub mode: DeviceMode,
    /// What the database holds to check the token with.
    pub stored_token: String,
    /// Hardened: the secret the last rotation replaced, still honoured for a short grace.
    pub previous_hash_prefix: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub rotated_at: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen_at: Timestamp,
    /// `None`: as written, the token never expires.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
    /// `live`, `expired` or `revoked`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: InspectedDeviceState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedFamily {
    pub id_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub absolute_expires_at: Timestamp,
    /// `active`, `expired`, or why it was revoked: `logout`, `revoked`, `reused`.
    pub state: String,
    pub tokens: Vec<InspectedRefreshToken>,
}

/// Where a refresh token stands within its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectedTokenState {
    Current,
    Rotated,
    Expired,
    Revoked,
}

impl InspectedTokenState {
    /// The wire form, as in `{"state": "..."}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InspectedTokenState::Current => "current",
            InspectedTokenState::Rotated => "rotated",
            InspectedTokenState::Expired => "expired",
            InspectedTokenState::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedRefreshToken {
    pub hash_prefix: String,
    pub parent_hash_prefix: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub issued_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// `current`, `rotated`, `expired`, or `revoked` (with its family).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: InspectedTokenState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedFormToken {
    pub hash_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// The order it was spent on; `None` while unused.
    pub spent_on_order: Option<i64>,
}

/// Where a stored `Idempotency-Key` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyKeyState {
    /// Claimed by a request that has not finished.
    InFlight,
    /// Its response is stored and replayed to every retry.
    Finished,
}

impl IdempotencyKeyState {
    /// The wire form, as in `{"state": "..."}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdempotencyKeyState::InFlight => "in_flight",
            IdempotencyKeyState::Finished => "finished",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedIdempotencyKey {
    /// Chosen by the client; a name for the request, not a secret.
    pub key: String,
    /// `in_flight` or `finished`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: IdempotencyKeyState,
    pub response_status: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectedOrder {
    pub id: i64,
    pub item: String,
    pub quantity: i64,
}
