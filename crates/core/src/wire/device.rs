//! Scheme 1, the device token: `/api/device/*`. The login request carries a password and stays
//! with the server.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::device::DeviceMode;
use crate::wire::session::UserView;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceView {
    /// The server's id for this device (used by the device list).
    pub id: i64,
    /// Masked: as written, the device id is the token.
    pub device_id_masked: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "hardened"))]
    pub mode: DeviceMode,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen_at: Timestamp,
    /// `null` as written: the article's token never expires.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub token_expires_at: Option<Timestamp>,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceSessionInfo {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub idle_expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceLoginResponse {
    /// Send it as `X-Device-Token`. As written it equals the device id. Absent for a bound device,
    /// which sends a DPoP proof by its key instead of any token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
    pub device: DeviceView,
    pub session: DeviceSessionInfo,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub token_expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceMe {
    pub user: UserView,
    pub device: DeviceView,
    pub session: DeviceSessionInfo,
    /// True when the server session had expired or was gone and was re-attached from the database
    /// (also signalled by `X-Session-Renewed: 1`).
    pub renewed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceList {
    pub devices: Vec<DeviceListEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceListEntry {
    #[serde(flatten)]
    pub device: DeviceView,
    /// The device making this request.
    pub current: bool,
}
