//! Device Bound Session Credentials for the session-id scheme (the W3C draft Chrome ships): the
//! browser binds the server session to a key it keeps out of every page's reach, and the session
//! then needs, beside its cookie, a short-lived cookie that only that key can renew.
//!
//! - At login the answer carries `Secure-Session-Registration` with a challenge; a browser that
//!   speaks DBSC posts a JWT signed by a new key (its public half in the header) to the
//!   registration path. The key is kept in the session record — in the store every instance shares
//!   — with the hash of a fresh bound cookie.
//! - A bound session's requests need that cookie, unexpired (`dbsc_refresh_required`). When it is
//!   about to be gone, the browser posts to the refresh path, is answered 403 with a challenge,
//!   and posts again with the challenge signed by the same key; it gets a new bound cookie.
//! - A thief with a copy of both cookies keeps the session only as long as the bound one lives.
//!
//! Challenges are a random part under a MAC of the purpose, the session and the time
//! (`tokenlab_core::dbsc`), so any instance recognises any instance's; and each answer is spent
//! once, in the replay store DPoP proofs use, so a captured answer cannot mint bound cookies.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use tokenlab_core::dbsc::{
    self, BOUND_COOKIE_LIFETIME, CHALLENGE_HEADER, CHALLENGE_PERIOD, CHALLENGE_RANDOM_BYTES,
    Purpose, REGISTRATION_HEADER, RESPONSE_HEADER, SESSION_ID_HEADER,
};
use tokenlab_core::dpop::Jwk;
use tokenlab_core::wire::{DbscCredential, DbscInstructions, DbscScope, SessionBinding};
use tokenlab_core::{Reason, Timestamp};
use tower_sessions::Session;

use crate::auth::dpop::derived_key;
use crate::clock::from_unix_seconds;
use crate::error::ApiError;
use crate::secrets::{new_token, storage_hash};
use crate::sessions::{OWNER_KEY, SessionOwner};
use crate::state::AppState;

/// The short-lived cookie a bound session needs (`__Host-` in front over https).
pub const BOUND_COOKIE: &str = "tl_bound";
/// Where the browser registers its key, and where it refreshes the bound cookie.
pub const REGISTRATION_PATH: &str = "/api/session/dbsc/registration";
pub const REFRESH_PATH: &str = "/api/session/dbsc/refresh";
pub(crate) const BINDING_KEY: &str = "dbsc_binding";
const CHALLENGE_KEY_LABEL: &str = "tokenlab DBSC challenge key";

/// What a bound session keeps of its binding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbscBinding {
    /// The DBSC session's name for the browser (the session's handle in the sessions list).
    pub session_identifier: String,
    /// The browser's public key; refreshes must be signed by it.
    pub jwk: Jwk,
    pub key_thumbprint: String,
    /// The bound cookies still accepted: the newest, and the one it replaced (requests already
    /// in flight with it while the browser refreshed), each until its own expiry.
    pub cookies: Vec<BoundCookie>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoundCookie {
    /// SHA-256 (hex) of the cookie's value.
    pub hash: String,
    pub expires_at: i64,
}

impl DbscBinding {
    /// The view of the binding, for the cookie this request carried (or the newest).
    pub fn view(&self, presented_hash: Option<&str>) -> Result<SessionBinding, ApiError> {
        let cookie = self
            .cookies
            .iter()
            .find(|c| Some(c.hash.as_str()) == presented_hash)
            .or_else(|| self.cookies.last())
            .ok_or_else(|| ApiError::internal("a bound session without a bound cookie"))?;
        Ok(SessionBinding {
            key_thumbprint: self.key_thumbprint.clone(),
            cookie_expires_at: from_unix_seconds(cookie.expires_at)?,
        })
    }
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(ApiError::internal)
}

/// A new challenge for `purpose` of the session `subject`.
fn new_challenge(state: &AppState, purpose: Purpose, subject: &str) -> Result<String, ApiError> {
    let key = derived_key(state, CHALLENGE_KEY_LABEL)?;
    let mut random = [0u8; CHALLENGE_RANDOM_BYTES];
    state.secrets.fill(&mut random).map_err(ApiError::internal)?;
    Ok(dbsc::challenge(&key, purpose, subject, &random, state.clock.now()))
}

/// Whether `challenge` is one this server issued for `purpose` of `subject` and still valid, and
/// no answer to it was taken before (on any instance): then it is spent.
async fn spend_challenge(
    state: &AppState,
    purpose: Purpose,
    subject: &str,
    challenge: &str,
) -> Result<(), ApiError> {
    let key = derived_key(state, CHALLENGE_KEY_LABEL)?;
    let now = state.clock.now();
    if !dbsc::challenge_is_valid(&key, purpose, subject, challenge, now) {
        return Err(refused(
            "the answer is not to a challenge this server issued for this session",
        ));
    }
    let spent = storage_hash(&format!("dbsc {subject} {challenge}"));
    // A challenge is valid for at most two periods after it was issued.
    let useless_after = now + CHALLENGE_PERIOD * 2;
    if !state.session_store.record_proof_once(&state.db, &spent, useless_after, now).await? {
        return Err(refused("this answer was already used; ask for a new challenge"));
    }
    Ok(())
}

/// `Secure-Session-Registration` for a session that just logged in, with a challenge naming it.
pub fn registration_header(
    state: &AppState,
    owner: &SessionOwner,
) -> Result<(HeaderName, HeaderValue), ApiError> {
    let challenge = new_challenge(state, Purpose::Registration, &owner.handle)?;
    let value = dbsc::registration_header(REGISTRATION_PATH, &challenge);
    Ok((HeaderName::from_static(REGISTRATION_HEADER), header_value(&value)?))
}

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::refused(Reason::DbscProofInvalid, why.to_string())
}

fn presented_response(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get(RESPONSE_HEADER)
        .map(|value| value.to_str().map_err(|_| refused("Secure-Session-Response is not text")))
        .transpose()
}

/// The cookie's name as set: `__Host-tl_bound` over https.
fn cookie_name(state: &AppState) -> String {
    state.cookies.cookie_name(BOUND_COOKIE)
}

/// The attributes the bound cookie is set with, which the instructions repeat to the browser.
fn cookie_attributes(state: &AppState) -> &'static str {
    if state.cookies.secure {
        "Path=/; Secure; HttpOnly; SameSite=Lax"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    }
}

/// A fresh bound cookie: its `Set-Cookie`, and what the session keeps of it.
fn new_bound_cookie(
    state: &AppState,
    now: Timestamp,
) -> Result<(HeaderValue, BoundCookie), ApiError> {
    let value = new_token(state.secrets.as_ref())?;
    let cookie = Cookie::build((cookie_name(state), value.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookies.secure)
        .max_age(time::Duration::seconds(BOUND_COOKIE_LIFETIME.whole_seconds()))
        .build();
    let kept = BoundCookie {
        hash: storage_hash(&value),
        expires_at: (now + BOUND_COOKIE_LIFETIME).unix_timestamp(),
    };
    Ok((header_value(&cookie.to_string())?, kept))
}

fn instructions(state: &AppState, binding: &DbscBinding) -> DbscInstructions {
    DbscInstructions {
        session_identifier: binding.session_identifier.clone(),
        refresh_url: REFRESH_PATH.to_owned(),
        scope: DbscScope {
            origin: state.public_origin.to_string(),
            // On `localhost:port` a site-wide scope is refused by the browser; the origin is
            // what the session covers anyway.
            include_site: false,
            scope_specification: Vec::new(),
        },
        credentials: vec![DbscCredential {
            kind: "cookie".to_owned(),
            name: cookie_name(state),
            attributes: cookie_attributes(state).to_owned(),
        }],
    }
}

fn answer(state: &AppState, binding: &DbscBinding, cookie: HeaderValue) -> Response {
    let mut response = (StatusCode::OK, axum::Json(instructions(state, binding))).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

async fn owner_of(session: &Session) -> Result<SessionOwner, ApiError> {
    session
        .get::<SessionOwner>(OWNER_KEY)
        .await?
        .ok_or_else(|| ApiError::refused(Reason::NotLoggedIn, "no session: log in first"))
}

/// The registration: the browser's JWT, signed by the key in its header, answering this session's
/// registration challenge. The key is kept in the session and the first bound cookie set.
pub async fn register(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner_of(session).await?;
    if session.get::<DbscBinding>(BINDING_KEY).await?.is_some() {
        return Err(refused("this session is bound already"));
    }
    let token = presented_response(headers)?
        .ok_or_else(|| refused("send the signed registration in Secure-Session-Response"))?;
    let (jwk, challenge) = dbsc::verify_registration(token).map_err(refused)?;
    spend_challenge(state, Purpose::Registration, &owner.handle, &challenge).await?;
    let now = state.clock.now();
    let (cookie, kept) = new_bound_cookie(state, now)?;
    let binding = DbscBinding {
        session_identifier: owner.handle.clone(),
        key_thumbprint: jwk.thumbprint().map_err(refused)?,
        jwk,
        cookies: vec![kept],
    };
    session.insert(BINDING_KEY, &binding).await?;
    tracing::info!(session = owner.handle, "session bound to a browser key (DBSC)");
    Ok(answer(state, &binding, cookie))
}

/// A refresh: without a signed answer, the challenge to sign (403); with one signed by the
/// session's key, a new bound cookie.
pub async fn refresh(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // The bound cookie is missing by definition here, so the session's own validity is checked
    // without it: an ended or expired session is not renewed.
    crate::auth::session::still_valid(state, session).await?;
    let mut binding = session
        .get::<DbscBinding>(BINDING_KEY)
        .await?
        .ok_or_else(|| refused("this session is not bound"))?;
    let named = headers.get(SESSION_ID_HEADER).and_then(|v| v.to_str().ok());
    if named != Some(binding.session_identifier.as_str()) {
        return Err(refused("Sec-Secure-Session-Id does not name this session"));
    }
    let subject = binding.session_identifier.clone();
    let Some(token) = presented_response(headers)? else {
        let challenge = new_challenge(state, Purpose::Refresh, &subject)?;
        let value = dbsc::challenge_header(&challenge, &subject);
        return Err(ApiError::refused(
            Reason::DbscChallenge,
            "sign this challenge with the session's key",
        )
        .with_header(HeaderName::from_static(CHALLENGE_HEADER), header_value(&value)?));
    };
    let challenge = dbsc::verify_refresh(token, &binding.jwk).map_err(refused)?;
    spend_challenge(state, Purpose::Refresh, &subject, &challenge).await?;
    let now = state.clock.now();
    let (cookie, kept) = new_bound_cookie(state, now)?;
    let now_s = now.unix_timestamp();
    binding.cookies.retain(|c| c.expires_at > now_s);
    binding.cookies.push(kept);
    // The newest and the one before it: enough for requests in flight during the refresh.
    let excess = binding.cookies.len().saturating_sub(2);
    binding.cookies.drain(..excess);
    session.insert(BINDING_KEY, &binding).await?;
    Ok(answer(state, &binding, cookie))
}

/// For a bound session, the bound cookie this request must carry; `Ok(None)` for a session that
/// is not bound. A missing or expired one is `dbsc_refresh_required`, and the expired cookie is
/// cleared so that the browser, which counts its own time, renews it before the next request
/// (the demo clock can move past a cookie the browser still holds).
pub async fn check_bound_cookie(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<Option<SessionBinding>, ApiError> {
    let Some(binding) = session.get::<DbscBinding>(BINDING_KEY).await? else { return Ok(None) };
    let jar = CookieJar::from_headers(headers);
    let presented = jar.get(&cookie_name(state)).map(|c| storage_hash(c.value()));
    let now = state.clock.now().unix_timestamp();
    let live =
        binding.cookies.iter().any(|c| Some(&c.hash) == presented.as_ref() && now < c.expires_at);
    if !live {
        let cleared = Cookie::build((cookie_name(state), ""))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.cookies.secure)
            .max_age(time::Duration::ZERO)
            .build();
        return Err(ApiError::refused(
            Reason::DbscRefreshRequired,
            "this session is bound to a key in the browser: its short-lived cookie is missing or expired",
        )
        .with_header(header::SET_COOKIE, header_value(&cleared.to_string())?));
    }
    binding.view(presented.as_deref()).map(Some)
}
