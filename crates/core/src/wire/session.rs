//! Scheme 2, the session id as the token: `/api/session/*`. The login request carries a password
//! and stays with the server.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A user as every scheme's responses show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// The session id as the server sees it, masked: the cookie is HttpOnly, so the page's
    /// JavaScript cannot read it, and this view must not hand it out either.
    pub id_masked: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// Slides forward with every request, up to `absolute_expires_at`.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub idle_expires_at: Timestamp,
    /// Fixed at login.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub absolute_expires_at: Timestamp,
    /// Present once the browser bound the session to a key of its own (Device Bound Session
    /// Credentials): every request then needs the short-lived cookie only that key renews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<SessionBinding>,
}

/// A session bound to a key inside the browser (DBSC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionBinding {
    /// The thumbprint (RFC 7638) of the browser's key.
    pub key_thumbprint: String,
    /// When the short-lived cookie the request carried (or the newest one) expires.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub cookie_expires_at: Timestamp,
}

/// What the browser is told to keep bound (the DBSC draft's session instructions), answered by
/// registration and by every refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbscInstructions {
    pub session_identifier: String,
    pub refresh_url: String,
    pub scope: DbscScope,
    pub credentials: Vec<DbscCredential>,
}

/// Which requests the bound session covers: the whole origin, not its sibling subdomains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbscScope {
    pub origin: String,
    pub include_site: bool,
    /// Exceptions to the scope; tokenlab needs none.
    pub scope_specification: Vec<DbscScopeRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbscScopeRule {
    #[serde(rename = "type")]
    pub kind: String,
    pub domain: String,
    pub path: String,
}

/// A cookie the browser keeps renewed with its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbscCredential {
    /// Always `cookie`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// The attributes it is set with (`Set-Cookie` without the name, value and lifetime).
    pub attributes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub user: UserView,
    pub session: SessionInfo,
}
