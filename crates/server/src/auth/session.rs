//! Scheme 2 of the article, the engine: the server's session id is the token. A login stores the
//! user in a server session whose id is the cookie; every request checks the session's idle and
//! absolute expiry on the injected clock and slides the idle one.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokenlab_core::Reason;
use tokenlab_core::session::{Expired, SessionTimes};
use tokenlab_core::signout::Scheme;
use tokenlab_core::wire::SessionBinding;
use tower_sessions::Session;

use crate::auth::password::still_current_fail_safe;
use crate::entities::users;
use crate::error::{ApiError, Context as _};
use crate::sessions::{OWNER_KEY, SessionOwner, copy};
use crate::state::AppState;

/// The cookie's name (with `__Host-` in front when served over https).
pub const SESSION_COOKIE: &str = "tl_session";
pub(crate) const AUTH_KEY: &str = "session_auth";

/// What the session holds once logged in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: i64,
    pub username: String,
    pub times: SessionTimes,
    /// The session's binding to a browser key (DBSC), as this request proved it; kept in the
    /// session under its own key, never in this record.
    #[serde(skip)]
    pub bound: Option<SessionBinding>,
}

/// The signed-in user of this session, if the session is still valid at the injected clock's now.
/// A valid session's idle expiry slides forward (every authenticated request is activity, written
/// back once per `SessionPolicy::write_back_step`); an expired one is deleted and reported as
/// `session_expired`, once.
///
/// A session the browser bound to a key (DBSC) also needs its short-lived bound cookie
/// (`auth::dbsc::check_bound_cookie`).
#[tracing::instrument(name = "session.check", level = "debug", skip_all)]
pub async fn signed_in(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<SessionAuth, ApiError> {
    let Some(auth) = copy::read_parsed(&state.parsed_session_copies, session, AUTH_KEY).await?
    else {
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
    let bound = crate::auth::dbsc::check_bound_cookie(state, session, headers).await?;
    let auth = SessionAuth { bound, ..auth };
    // The idle expiry slides with one write a minute, not one per request: within the step the
    // stored times stand and the session is not written back at all.
    let Some(times) = auth.times.touched(&state.session_policy, now) else { return Ok(auth) };
    let auth = SessionAuth { times, ..auth };
    copy::write(session, AUTH_KEY, &auth).await?;
    Ok(auth)
}

/// Whether this session is signed in and within its timeouts, without touching it: for the DBSC
/// refresh, which comes exactly when the bound cookie is gone.
pub async fn still_valid(state: &AppState, session: &Session) -> Result<(), ApiError> {
    let Some(auth) = copy::read_parsed(&state.parsed_session_copies, session, AUTH_KEY).await?
    else {
        return Err(ApiError::refused(Reason::NotLoggedIn, "no session: log in first"));
    };
    auth.times
        .check(state.clock.now())
        .map_err(|_| ApiError::refused(Reason::SessionExpired, "the session expired; log in again"))
}

/// Starts a signed-in session for `user`, whose password was just checked. The session id is
/// replaced (a cookie from before login is never valid after it, so a planted id is never
/// promoted), and the session is saved now rather than by the layer after the handler, so the new
/// id exists to be shown.
#[tracing::instrument(name = "session.start", skip_all)]
pub async fn start(
    state: &AppState,
    session: &Session,
    user: &users::Model,
    headers: &HeaderMap,
) -> Result<SessionAuth, ApiError> {
    crate::sessions::renew_id(session).await?;
    let owner = SessionOwner::start(state, user.id, Scheme::Session, None, headers)?;
    let auth = SessionAuth {
        user_id: user.id,
        username: user.username.clone(),
        times: state.session_policy.start(state.clock.now()),
        bound: None,
    };
    session.insert(OWNER_KEY, &owner).await?;
    copy::write(session, AUTH_KEY, &auth).await?;
    session.save().await.context("creating the session at login")?;
    if let Err(refused) = still_current_fail_safe(state, user).await {
        session.flush().await?;
        return Err(refused);
    }
    Ok(auth)
}
