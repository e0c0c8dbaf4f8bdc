//! Who is calling: the one extractor every protected endpoint shared by the schemes uses.
//!
//! Today a caller is recognised by the session-id scheme's cookie; the device-token and bearer
//! schemes add their credentials here, so an endpoint like `/api/orders` serves all three without
//! knowing which one signed the caller in.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions::Session;

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
        let session = Session::from_request_parts(parts, state).await.map_err(|(_, why)| {
            ApiError::internal(format!("route without a session layer: {why}"))
        })?;
        let auth = signed_in(state, &session).await?;
        Ok(Caller { user_id: auth.user_id, username: auth.username })
    }
}
