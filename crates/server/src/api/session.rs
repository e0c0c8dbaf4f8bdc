//! Scheme 2 of the article: the server's session id is the token.
//!
//! Log in with a name and password; the server stores the login in a session and the browser keeps
//! only the session id, in an HttpOnly cookie. Simple, and nothing else to store — but when the
//! session expires, the only way back is to log in again (claims C6 and C7).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use tokenlab_core::Reason;
use tokenlab_core::display::mask_secret;
use tokenlab_core::wire::credentials::LoginRequest;
use tokenlab_core::wire::{DbscInstructions, SessionInfo, SessionView, UserView};
use tower_sessions::Session;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{JSON_BODY, PASSWORD_CHECK, SESSION, STATE_CHANGING, refusals};
use crate::auth;
use crate::auth::password::authenticate;
use crate::auth::session::{SESSION_COOKIE, SessionAuth, signed_in};
use crate::error::{ApiError, ApiJson};
use crate::guard::ClientIp;
use crate::sessions::{OWNER_KEY, SessionOwner};
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(logout))
        .routes(routes!(dbsc_registration))
        .routes(routes!(dbsc_refresh));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

refusals!(LoginRefusals = STATE_CHANGING, JSON_BODY, PASSWORD_CHECK);
refusals!(MeRefusals = SESSION);
refusals!(DbscRegistrationRefusals = STATE_CHANGING, SESSION, &[Reason::DbscProofInvalid]);
refusals!(
    DbscRefreshRefusals = STATE_CHANGING,
    &[Reason::NotLoggedIn, Reason::SessionExpired, Reason::DbscProofInvalid, Reason::DbscChallenge]
);
refusals!(LogoutRefusals = STATE_CHANGING);

fn view(auth: &SessionAuth, session: &Session) -> SessionView {
    SessionView {
        user: UserView { id: auth.user_id, username: auth.username.clone() },
        session: SessionInfo {
            id_masked: session.id().map_or_else(String::new, |id| mask_secret(&id.to_string())),
            started_at: auth.times.started_at,
            idle_expires_at: auth.times.idle_expires_at,
            absolute_expires_at: auth.times.absolute_expires_at,
            bound: auth.bound.clone(),
        },
    }
}

/// Log in; the session id becomes the token.
///
/// The session id is replaced at login (a cookie from before login is never valid after it), so a
/// session id planted by an attacker is never promoted to a logged-in one. The answer also invites
/// the browser to bind the session to a key of its own (`Secure-Session-Registration`, Device Bound
/// Session Credentials); a browser that does not speak DBSC ignores it.
#[utoipa::path(post, path = "/session/login", tag = "session", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie: tl_session=…`", body = SessionView,
            headers(("Secure-Session-Registration" = String, description = "DBSC: the \
                algorithm, the registration path and the challenge to sign"))),
        LoginRefusals,
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let user = authenticate(&state, &body.username, body.password, client).await?;
    let auth = auth::session::start(&state, &session, &user, &headers).await?;
    let owner = session
        .get::<SessionOwner>(OWNER_KEY)
        .await?
        .ok_or_else(|| ApiError::internal("a session started without its owner"))?;
    let (name, value) = auth::dbsc::registration_header(&state, &owner)?;
    let mut response = ApiJson(view(&auth, &session)).into_response();
    response.headers_mut().insert(name, value);
    Ok(response)
}

/// DBSC registration: the browser's JWT (`Secure-Session-Response`), signed by a new ES256 key
/// whose public half is in its header and answering the login's challenge. The key is kept with the
/// session, which from now on also needs the short-lived cookie `tl_bound` that only the key renews.
#[utoipa::path(post, path = "/session/dbsc/registration", tag = "session",
    params(DbscHeaders),
    responses(
        (status = 200, description = "Bound; `Set-Cookie: tl_bound=…` (ten minutes)",
            body = DbscInstructions),
        DbscRegistrationRefusals,
    ))]
async fn dbsc_registration(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    signed_in(&state, &session, &headers).await?;
    auth::dbsc::register(&state, &session, &headers).await
}

/// DBSC refresh of the bound cookie: without `Secure-Session-Response`, 403 `dbsc_challenge` and
/// the challenge in `Secure-Session-Challenge`; with the challenge signed by the session's key, a
/// new `tl_bound`.
#[utoipa::path(post, path = "/session/dbsc/refresh", tag = "session",
    params(DbscHeaders),
    responses(
        (status = 200, description = "Refreshed; `Set-Cookie: tl_bound=…`", body = DbscInstructions),
        DbscRefreshRefusals,
    ))]
async fn dbsc_refresh(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::dbsc::refresh(&state, &session, &headers).await
}

/// The DBSC request headers (the browser sends them itself).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Read from the `HeaderMap`; this type only describes them.
struct DbscHeaders {
    /// A JWT (`typ: dbsc+jwt`, ES256) whose `jti` is the challenge: at registration with the new
    /// public key in its header, at a refresh signed by the registered key.
    #[param(rename = "Secure-Session-Response")]
    response: Option<String>,
    /// At a refresh: the bound session's identifier (`session_identifier`).
    #[param(rename = "Sec-Secure-Session-Id")]
    session_id: Option<String>,
}

/// The logged-in user; each call slides the idle timeout forward.
///
/// A `session_expired` is answered once; the session is then gone.
#[utoipa::path(get, path = "/session/me", tag = "session", security(("session_cookie" = [])),
    responses((status = 200, body = SessionView), MeRefusals))]
async fn me(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<ApiJson<SessionView>, ApiError> {
    let auth = signed_in(&state, &session, &headers).await?;
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
