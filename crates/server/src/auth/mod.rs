//! Authentication: each scheme's engine, and `Caller`, the one extractor every protected endpoint
//! shared by the schemes uses.
//!
//! Dependencies point one way: `api` (handlers, request and response types) → `auth` (what makes
//! a caller signed in, and what ends it) → `core` (the rules) and the database. Nothing here
//! imports from `api`.
//!
//! - `password` — checking a name and password, throttled; `still_current` ends every login.
//! - `session` — scheme 2, the session id as the token; `dbsc`, the browser binding its session to
//!   a key (Device Bound Session Credentials).
//! - `device` — scheme 1, the device token, as written and hardened.
//! - `bearer` — article §4, access + refresh tokens.
//! - `signout` and `revocation` — listing and ending sign-ins of every scheme; access tokens of an
//!   ended login refused on every instance within a second.
//! - `dpop` — proofs of possession (RFC 9449) for tokens bound to a key.
//!
//! A caller is recognised by an access token (`Authorization: Bearer`, or `DPoP` with a proof),
//! else by the device-token scheme's headers, else by the session-id scheme's cookie, so an
//! endpoint like `/api/orders` serves every scheme without knowing which one signed the caller in.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use tower_sessions::Session;

pub mod bearer;
pub mod dbsc;
pub mod device;
pub mod dpop;
pub mod password;
pub mod revocation;
pub mod session;
pub mod signout;
pub mod verified_tokens;

use self::bearer::bearer_user;
use self::device::{Presented, device_user};
use self::session::signed_in;
use self::signout::Current;
use crate::error::{ApiError, Context as _};
use crate::sessions::{OWNER_KEY, SessionOwner};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    /// Which sign-in the request was made with.
    pub credential: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// The session-id scheme's cookie; the session's handle in the sessions list.
    Session { handle: Option<String> },
    /// The device headers; the device's row id.
    Device { device_pk: i64 },
    /// An access token; the handle (`sid`) of the refresh family it was minted from.
    Bearer { family_handle: String },
}

impl Caller {
    /// The caller's own sign-in, as the sessions list and "keep current" name it.
    pub fn current(&self) -> Current {
        match &self.credential {
            Credential::Session { handle } => {
                Current { session_handle: handle.clone(), ..Current::default() }
            }
            Credential::Device { device_pk } => {
                Current { device_pk: Some(*device_pk), ..Current::default() }
            }
            Credential::Bearer { family_handle } => {
                Current { family_handle: Some(family_handle.clone()), ..Current::default() }
            }
        }
    }
}

/// The request's path as the client sent it: routers nested under `/api` see their own part of it.
pub fn original_path(parts: &Parts) -> &str {
    parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |uri| uri.0.path())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
            let target = dpop::Target { method: &parts.method, path: original_path(parts) };
            let (user_id, username, family_handle) = bearer_user(state, &parts.headers, target)
                .await
                .context("checking an access token")?;
            return Ok(Caller {
                user_id,
                username,
                credential: Credential::Bearer { family_handle },
            });
        }
        if let Some(presented) = Presented::of(&parts.headers)? {
            let target = dpop::Target { method: &parts.method, path: original_path(parts) };
            let (device, username) = device_user(state, presented, target)
                .await
                .context("checking device headers against the database")?;
            return Ok(Caller {
                user_id: device.user_id,
                username,
                credential: Credential::Device { device_pk: device.id },
            });
        }
        let session = Session::from_request_parts(parts, state).await.map_err(|(_, why)| {
            ApiError::internal(format!("route without a session layer: {why}"))
        })?;
        let auth =
            signed_in(state, &session, &parts.headers).await.context("loading the session")?;
        let owner = session.get::<SessionOwner>(OWNER_KEY).await?;
        Ok(Caller {
            user_id: auth.user_id,
            username: auth.username,
            credential: Credential::Session { handle: owner.map(|o| o.handle) },
        })
    }
}
