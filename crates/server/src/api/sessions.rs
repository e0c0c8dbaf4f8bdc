//! A user's sign-ins, whatever the scheme: list them, end one, end all (OWASP ASVS V7.5).
//!
//! Any signed-in caller may ask — with the session cookie, the device headers or an access token
//! (`auth::Caller`) — and sees the same list, with its own sign-in marked `current`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sea_orm::TransactionTrait as _;
use serde::Deserialize;
use tokenlab_core::Reason;
use tokenlab_core::signout::{ACCESS_REVOCATION_BOUND, SessionRef};
use tokenlab_core::wire::{RevokeAll, RevokedAll, SessionList};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{CALLER, JSON_BODY, PATH_PARAMETER, STATE_CHANGING, refusals};
use crate::auth::Caller;
use crate::auth::session::SESSION_COOKIE;
use crate::auth::signout::{self, Current};
use crate::error::{ApiError, ApiJson, Context as _};
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(revoke_all));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

/// `DELETE /api/sessions/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct SessionPath {
    /// An `id` from `GET /api/sessions`; any other is `not_found`.
    #[param(min_length = 1)]
    id: String,
}

refusals!(ListRefusals = CALLER);
refusals!(EndOneRefusals = STATE_CHANGING, CALLER, PATH_PARAMETER, &[Reason::NotFound]);
refusals!(RevokeAllRefusals = STATE_CHANGING, CALLER, JSON_BODY);

/// Every live sign-in of the caller's user: session-id logins, devices, refresh-token families.
///
/// Any sign-in will do: an access token, else the device headers, else the session cookie; a
/// refusal carries the reason of the first one sent.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    security(("bearer" = []), ("device_id" = [], "device_token" = []), ("session_cookie" = [])),
    responses((status = 200, body = SessionList), ListRefusals))]
async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<SessionList>, ApiError> {
    let sessions = signout::list(&state, caller.user_id, &caller.current())
        .await
        .context("listing the sign-ins of a user")?;
    Ok(ApiJson(SessionList { sessions }))
}

/// End one sign-in: a session is deleted, a device revoked with its sessions, a refresh family
/// revoked with every access token minted from it.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions", params(SessionPath),
    security(("bearer" = []), ("device_id" = [], "device_token" = []), ("session_cookie" = [])),
    responses((status = 204, description = "Ended"), EndOneRefusals))]
async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(SessionPath { id }): Path<SessionPath>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::refused(Reason::NotFound, "no live sign-in of yours has this id");
    let which = SessionRef::parse(&id).ok_or_else(not_found)?;
    let ended = signout::end_one(
        &state.db,
        &state.session_store,
        caller.user_id,
        &which,
        state.clock.now(),
    )
    .await
    .context("ending one sign-in")?;
    if !ended {
        return Err(not_found());
    }
    state.revoked_families.reload_after_change(&state.db, state.clock.as_ref()).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every server session, device and refresh family of the user, and every
/// access token minted from those families, end in one transaction.
#[utoipa::path(post, path = "/sessions/revoke-all", tag = "sessions", request_body = RevokeAll,
    security(("bearer" = []), ("device_id" = [], "device_token" = []), ("session_cookie" = [])),
    responses((status = 200, body = RevokedAll), RevokeAllRefusals))]
async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RevokeAll>,
) -> Result<ApiJson<RevokedAll>, ApiError> {
    let keep = if body.keep_current { caller.current() } else { Current::default() };
    let txn = state.db.begin().await.context("signing out everywhere")?;
    let ended = signout::end_all(
        &txn,
        &state.session_store,
        caller.user_id,
        &keep,
        "signed_out",
        state.clock.now(),
    )
    .await
    .context("signing out everywhere")?;
    txn.commit().await.context("committing a sign-out everywhere")?;
    signout::end_all_again_after_commit(&state, caller.user_id, &keep).await?;
    state.revoked_families.reload_after_change(&state.db, state.clock.as_ref()).await;
    tracing::info!(
        user_id = caller.user_id,
        ?ended,
        keep_current = body.keep_current,
        "signed out everywhere"
    );
    Ok(ApiJson(RevokedAll {
        ended,
        access_token_bound_ms: i64::try_from(ACCESS_REVOCATION_BOUND.whole_milliseconds())
            .unwrap_or(i64::MAX),
    }))
}
