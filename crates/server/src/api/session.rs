//! Scheme 2 of the article: the server's session id is the token.
//!
//! Log in with a name and password; the server stores the login in a session and the browser keeps
//! only the session id, in an HttpOnly cookie. Simple, and nothing else to store — but when the
//! session expires, the only way back is to log in again (claims C6 and C7).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tokenlab_core::display::mask_secret;
use tokenlab_core::session::{Expired, SessionTimes};
use tokenlab_core::signout::Scheme;
use tokenlab_core::{Reason, Timestamp};
use tower_sessions::Session;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::guard::ClientIp;
use crate::login::{authenticate, still_current};
use crate::sessions::{OWNER_KEY, SessionOwner};
use crate::state::AppState;

/// The cookie's name (with `__Host-` in front when served over https).
pub const SESSION_COOKIE: &str = "tl_session";
pub(crate) const AUTH_KEY: &str = "session_auth";

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes =
        OpenApiRouter::new().routes(routes!(login)).routes(routes!(me)).routes(routes!(logout));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

/// What the session holds once logged in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: i64,
    pub username: String,
    pub times: SessionTimes,
}

/// The signed-in user of this session, if the session is still valid at the injected clock's now.
/// A valid session's idle expiry slides forward (every authenticated request is activity); an
/// expired one is deleted and reported as `session_expired`, once.
pub async fn signed_in(state: &AppState, session: &Session) -> Result<SessionAuth, ApiError> {
    let Some(auth) = session.get::<SessionAuth>(AUTH_KEY).await.map_err(ApiError::internal)? else {
        return Err(ApiError::refused(Reason::NotLoggedIn, "no session: log in first"));
    };
    let now = state.clock.now();
    if let Err(expired) = auth.times.check(now) {
        // Deleted, so the next request with this cookie is simply not logged in: the expiry is
        // reported once, when it is discovered.
        session.flush().await?;
        let which = match expired {
            Expired::Idle => "the session was idle for longer than its idle timeout",
            Expired::Absolute => "the session reached its absolute timeout",
        };
        return Err(ApiError::refused(Reason::SessionExpired, format!("{which}; log in again")));
    }
    let auth = SessionAuth { times: auth.times.touch(&state.session_policy, now), ..auth };
    session.insert(AUTH_KEY, &auth).await.map_err(ApiError::internal)?;
    Ok(auth)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "alice")]
    username: String,
    #[schema(example = "wonderland-demo")]
    password: String,
}

/// A user as every scheme's responses show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The session id as the server sees it, masked: the cookie is HttpOnly, so the page's
    /// JavaScript cannot read it, and this view must not hand it out either.
    id_masked: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    started_at: Timestamp,
    /// Slides forward with every request, up to `absolute_expires_at`.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    idle_expires_at: Timestamp,
    /// Fixed at login.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    absolute_expires_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    user: UserView,
    session: SessionInfo,
}

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
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
        (status = 403, description = "`cross_site_request`", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<ApiJson<SessionView>, ApiError> {
    let user = authenticate(&state, &body.username, body.password, client).await?;
    session.cycle_id().await?;
    let owner = SessionOwner::start(&state, user.id, Scheme::Session, None, &headers)?;
    let auth = SessionAuth {
        user_id: user.id,
        username: user.username.clone(),
        times: state.session_policy.start(state.clock.now()),
    };
    session.insert(OWNER_KEY, &owner).await.map_err(ApiError::internal)?;
    session.insert(AUTH_KEY, &auth).await.map_err(ApiError::internal)?;
    // Saved now rather than by the layer after the handler, so the new id exists to be shown.
    session.save().await?;
    if let Err(refused) = still_current(&state.db, &user).await {
        session.flush().await?;
        return Err(refused);
    }
    Ok(ApiJson(view(&auth, &session)))
}

/// The logged-in user; each call slides the idle timeout forward.
#[utoipa::path(get, path = "/session/me", tag = "session",
    responses(
        (status = 200, body = SessionView),
        (status = 401, description = "`not_logged_in`, or `session_expired` (answered once; the session is then gone)", body = ErrorBody),
    ))]
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
              (status = 403, description = "`cross_site_request`", body = ErrorBody)))]
async fn logout(session: Session) -> Result<StatusCode, ApiError> {
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
