//! Scheme 2 of the article: the server's session id is the token.
//!
//! Log in with a name and password; the server stores the login in a session and the browser keeps
//! only the session id, in an HttpOnly cookie. Simple, and nothing else to store — but when the
//! session expires, the only way back is to log in again (claims C6 and C7).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokenlab_core::display::mask_secret;
use tokenlab_core::wire::credentials::LoginRequest;
use tokenlab_core::wire::{SessionInfo, SessionView, UserView};
use tower_sessions::Session;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{JSON_BODY, PASSWORD_CHECK, SESSION, STATE_CHANGING, refusals};
use crate::auth;
use crate::auth::password::authenticate;
use crate::auth::session::{SESSION_COOKIE, SessionAuth, signed_in};
use crate::error::{ApiError, ApiJson};
use crate::guard::ClientIp;
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes =
        OpenApiRouter::new().routes(routes!(login)).routes(routes!(me)).routes(routes!(logout));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

refusals!(LoginRefusals = STATE_CHANGING, JSON_BODY, PASSWORD_CHECK);
refusals!(MeRefusals = SESSION);
refusals!(LogoutRefusals = STATE_CHANGING);

fn view(auth: &SessionAuth, session: &Session) -> SessionView {
    SessionView {
        user: UserView { id: auth.user_id, username: auth.username.clone() },
        session: SessionInfo {
            id_masked: session.id().map_or_else(String::new, |id| mask_secret(&id.to_string())),
            started_at: auth.times.started_at,
            idle_expires_at: auth.times.idle_expires_at,
            absolute_expires_at: auth.times.absolute_expires_at,
        },
    }
}

/// Log in; the session id becomes the token.
///
/// The session id is replaced at login (a cookie from before login is never valid after it), so a
/// session id planted by an attacker is never promoted to a logged-in one.
#[utoipa::path(post, path = "/session/login", tag = "session", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie: tl_session=…`", body = SessionView),
        LoginRefusals,
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<ApiJson<SessionView>, ApiError> {
    let user = authenticate(&state, &body.username, body.password, client).await?;
    let auth = auth::session::start(&state, &session, &user, &headers).await?;
    Ok(ApiJson(view(&auth, &session)))
}

/// The logged-in user; each call slides the idle timeout forward.
///
/// A `session_expired` is answered once; the session is then gone.
#[utoipa::path(get, path = "/session/me", tag = "session", security(("session_cookie" = [])),
    responses((status = 200, body = SessionView), MeRefusals))]
async fn me(
    State(state): State<AppState>,
    session: Session,
) -> Result<ApiJson<SessionView>, ApiError> {
    let auth = signed_in(&state, &session).await?;
    Ok(ApiJson(view(&auth, &session)))
}

/// Log out: the server deletes the session, so the old cookie is worthless even if kept.
#[utoipa::path(post, path = "/session/logout", tag = "session",
    responses((status = 204, description = "Logged out (also when there was no session)"),
              LogoutRefusals))]
async fn logout(session: Session) -> Result<StatusCode, ApiError> {
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
