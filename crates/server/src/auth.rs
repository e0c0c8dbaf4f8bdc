//! Who is calling: the one extractor every protected endpoint shared by the schemes uses.
//!
//! A caller is recognised by an `Authorization: Bearer` access token, else by the device-token
//! scheme's headers, else by the session-id scheme's cookie, so an endpoint like `/api/orders`
//! serves every scheme without knowing which one signed the caller in.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions::Session;

use crate::api::device::device_user;
use crate::api::oauth::bearer_user;
use crate::api::session::signed_in;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
            let (user_id, username) = bearer_user(state, &parts.headers).await?;
            return Ok(Caller { user_id, username });
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if let (Some(device_id), Some(token)) = (header("x-device-id"), header("x-device-token")) {
            let (user_id, username) = device_user(state, device_id, token).await?;
            return Ok(Caller { user_id, username });
        }
        let session = Session::from_request_parts(parts, state).await.map_err(|(_, why)| {
            ApiError::internal(format!("route without a session layer: {why}"))
        })?;
        let auth = signed_in(state, &session).await?;
        Ok(Caller { user_id: auth.user_id, username: auth.username })
    }
}
