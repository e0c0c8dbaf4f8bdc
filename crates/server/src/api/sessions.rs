//! A user's sign-ins, whatever the scheme: list them, end one, end all (OWASP ASVS V7.5).
//!
//! Any signed-in caller may ask — with the session cookie, the device headers or an access token
//! (`auth::Caller`) — and sees the same list, with its own sign-in marked `current`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sea_orm::TransactionTrait as _;
use tokenlab_core::Reason;
use tokenlab_core::signout::{ACCESS_REVOCATION_BOUND, SessionRef};
use tokenlab_core::wire::{RevokeAll, RevokedAll, SessionList};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::auth::session::SESSION_COOKIE;
use crate::auth::signout::{self, Current};
use crate::error::{ApiError, ApiJson, Context as _, ErrorBody};
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(revoke_all));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

/// Every live sign-in of the caller's user: session-id logins, devices, refresh-token families.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    params(
        ("Authorization" = Option<String>, Header, description = "`Bearer <access token>`; or send the device headers, or the `tl_session` cookie"),
    ),
    responses(
        (status = 200, body = SessionList),
        (status = 401, description = "No valid sign-in: the reason of the scheme tried (`not_logged_in`, `session_expired`, `device_*`, `token_*`)", body = ErrorBody),
    ))]
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
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "An `id` from `GET /api/sessions`")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No valid sign-in", body = ErrorBody),
        (status = 404, description = "`not_found`: no live sign-in of yours has this id", body = ErrorBody),
    ))]
async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::refused(Reason::NotFound, "no live sign-in of yours has this id");
    let which = SessionRef::parse(&id).ok_or_else(not_found)?;
    let ended = signout::end_one(&state.db, caller.user_id, &which, state.clock.now())
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
    responses(
        (status = 200, body = RevokedAll),
        (status = 401, description = "No valid sign-in", body = ErrorBody),
        (status = 403, description = "`cross_site_request`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
    ))]
async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RevokeAll>,
) -> Result<ApiJson<RevokedAll>, ApiError> {
    let keep = if body.keep_current { caller.current() } else { Current::default() };
    let txn = state.db.begin().await.context("signing out everywhere")?;
    let ended = signout::end_all(&txn, caller.user_id, &keep, "signed_out", state.clock.now())
        .await
        .context("signing out everywhere")?;
    txn.commit().await.context("committing a sign-out everywhere")?;
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
