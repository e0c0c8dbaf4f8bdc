//! Scheme 1 of the article, the engine: the device token (claims C4 and C5), as written and
//! hardened.
//!
//! At login the client sends its device id. The server keeps a token for that device in the
//! database *and* in a server session of its own (cookie `tl_device`). Every protected call sends
//! `X-Device-Id` and `X-Device-Token`; the token is compared with the session's copy. When the
//! session has timed out or is gone, the token is looked up in the database and a fresh session is
//! attached to it: the user never logs in again. The rules of the modes live in
//! `tokenlab_core::device`; this module applies them to rows and sessions.
//!
//! A bound device (beyond the article) sends no token: `X-Device-Id` and a DPoP proof by the key
//! it registered at login (`auth::dpop`), on every call and for every re-attach.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, Set,
    TransactionTrait as _,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokenlab_core::device::{
    DeviceMode, DeviceState, PreviousSecret, check_device, previous_secret,
};
use tokenlab_core::session::SessionTimes;
use tokenlab_core::signout::Scheme;
use tokenlab_core::{Reason, Timestamp};
use tower_sessions::Session;

use crate::auth::dpop::{self, Target};
use crate::auth::password::still_current_fail_safe;
use crate::clock::from_unix_seconds;
use crate::entities::{devices, users};
use crate::error::{ApiError, Context as _};
use crate::secrets::{new_token, storage_hash};
use crate::sessions::{OWNER_KEY, SessionOwner, copy, user_agent};
use crate::state::AppState;

pub const DEVICE_COOKIE: &str = "tl_device";
pub(crate) const AUTH_KEY: &str = "device_auth";

/// The server session's copy of the device's token, as the article prescribes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceAuth {
    pub user_id: i64,
    pub username: String,
    pub device_pk: i64,
    pub device_id: String,
    pub mode: DeviceMode,
    /// As written: the token itself. Hardened: its SHA-256 (the session store is a database too).
    /// Bound: the thumbprint of the device's key (public; what a proof must be signed by).
    pub token_digest: String,
    pub times: SessionTimes,
    /// What the device row said when this session was attached, kept current by the session's
    /// own write-backs, so that a call on a live session reads no device row (ADR 27). `None` in
    /// sessions written before this existed: those are re-attached from the database once.
    #[serde(default)]
    pub facts: Option<DeviceFacts>,
}

/// The device row as the session knows it. Revocation and a new login on the device delete the
/// device's sessions, so a live session's device is neither revoked nor replaced; what can still
/// end it is the token's absolute expiry, which the copy carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceFacts {
    pub name: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: Option<i64>,
}

impl DeviceFacts {
    fn of(row: &devices::Model) -> Self {
        Self {
            name: row.name.clone(),
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
        }
    }
}

/// The device of a call, as the answer shows it: from its row (a login, a re-attach, the list of
/// devices) or from the session's copy (a call on a live session).
#[derive(Debug, Clone)]
pub struct KnownDevice {
    pub id: i64,
    pub device_id: String,
    pub mode: DeviceMode,
    pub facts: DeviceFacts,
    pub revoked: bool,
}

impl KnownDevice {
    pub fn of(row: &devices::Model) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id,
            device_id: row.device_id.clone(),
            mode: mode_of(row)?,
            facts: DeviceFacts::of(row),
            revoked: row.revoked_at.is_some(),
        })
    }
}

fn digest(mode: DeviceMode, token: &str) -> String {
    match mode {
        DeviceMode::AsWritten | DeviceMode::Bound => token.to_owned(),
        DeviceMode::Hardened => storage_hash(token),
    }
}

/// Compared in constant time, eight bytes at a time: subtle's comparison of byte slices pays an
/// optimisation barrier per byte, 870 instructions a device call for a 64-character digest (#14).
/// The words' differences are gathered without a branch and tested once; only the lengths, which
/// are public, can end the comparison early.
fn same_secret(a: &str, b: &str) -> bool {
    fn words(text: &str) -> impl Iterator<Item = u64> + '_ {
        text.as_bytes().chunks(8).map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(word)
        })
    }
    let difference = words(a).zip(words(b)).fold(0, |seen, (x, y)| seen | (x ^ y));
    a.len() == b.len() && bool::from(difference.ct_eq(&0))
}

pub fn mode_of(row: &devices::Model) -> Result<DeviceMode, ApiError> {
    DeviceMode::parse(&row.mode)
        .ok_or_else(|| ApiError::internal(format!("unknown device mode {}", row.mode)))
}

pub fn state_of(row: &devices::Model) -> Result<DeviceState, ApiError> {
    Ok(DeviceState {
        revoked: row.revoked_at.is_some(),
        expires_at: row.expires_at.map(from_unix_seconds).transpose()?,
    })
}

/// An authenticated device call: who, which device, and what the response must tell the client.
pub struct DeviceCall {
    pub auth: DeviceAuth,
    pub device: KnownDevice,
    pub renewed: bool,
    /// A hardened re-attach rotated the secret: the client must store this one.
    pub rotated_token: Option<String>,
    /// A bound device's next nonce (`DPoP-Nonce`), so that it rarely meets `use_dpop_nonce`.
    pub dpop_nonce: Option<(HeaderName, HeaderValue)>,
}

impl DeviceCall {
    pub fn respond(&self, status: StatusCode, body: impl Serialize) -> Response {
        let mut response = (status, axum::Json(body)).into_response();
        self.decorate(&mut response);
        response
    }

    pub fn no_content(&self) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        self.decorate(&mut response);
        response
    }

    fn decorate(&self, response: &mut Response) {
        if self.renewed {
            response.headers_mut().insert("x-session-renewed", HeaderValue::from_static("1"));
        }
        if let Some(token) = &self.rotated_token
            && let Ok(value) = HeaderValue::from_str(token)
        {
            response.headers_mut().insert(DEVICE_TOKEN_HEADER.clone(), value);
        }
        if let Some((name, value)) = &self.dpop_nonce {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

/// The headers a device call presents its credentials in. Named once: a lookup by `&str` parses
/// the name on every call, a few hundred instructions each on every device call (#14).
static DEVICE_ID_HEADER: HeaderName = HeaderName::from_static("x-device-id");
static DEVICE_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-device-token");

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// What a device call presents: a token (as written, hardened), or a proof by the device's key
/// (bound).
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    Token { device_id: &'a str, token: &'a str },
    Proof { device_id: &'a str, proof: &'a str },
}

impl<'a> Presented<'a> {
    /// The device credentials of a request, if it carries any: `X-Device-Id` with
    /// `X-Device-Token`, or with a `DPoP` proof.
    pub fn of(headers: &'a HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(device_id) = header(headers, &DEVICE_ID_HEADER) else { return Ok(None) };
        if let Some(token) = header(headers, &DEVICE_TOKEN_HEADER) {
            return Ok(Some(Self::Token { device_id, token }));
        }
        Ok(dpop::presented(headers)?.map(|proof| Self::Proof { device_id, proof }))
    }

    fn device_id(self) -> &'a str {
        match self {
            Self::Token { device_id, .. } | Self::Proof { device_id, .. } => device_id,
        }
    }
}

/// The interception the article describes, for every protected device call.
// The attribute's wrapper adds about 600 bytes to this future. An `Instrumented` made by hand
// saves them but enters and leaves the disabled span on every poll, which callgrind counted as
// dearer than the bytes (#14).
#[tracing::instrument(name = "device.authenticate", level = "debug", skip_all)]
pub async fn authenticate_device(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    target: Target<'_>,
) -> Result<DeviceCall, ApiError> {
    let Some(presented) = Presented::of(headers)? else {
        return Err(ApiError::refused(
            Reason::DeviceCredentialsMissing,
            "send X-Device-Id and X-Device-Token (a bound device: X-Device-Id and a DPoP proof)",
        ));
    };
    let now = state.clock.now();
    if let Some(auth) = copy::read_parsed(&state.parsed_device_copies, session, AUTH_KEY).await?
        && auth.times.check(now).is_ok()
        && let Some(facts) = auth.facts.clone()
    {
        // C4: the token sent is compared with the session's copy; a valid cookie is not enough.
        // A bound device's proof must be signed by the key the copy names.
        let matches = auth.device_id == presented.device_id()
            && match (presented, auth.mode) {
                (Presented::Token { token, .. }, DeviceMode::AsWritten | DeviceMode::Hardened) => {
                    same_secret(&digest(auth.mode, token), &auth.token_digest)
                }
                (Presented::Proof { proof, .. }, DeviceMode::Bound) => {
                    // Boxed, as the re-attach below: inline, a proof's check (a 4 KB future)
                    // would enlarge every device call's future, which each call moves several
                    // times (#14).
                    Box::pin(dpop::accept(state, proof, target, None, Some(&auth.token_digest)))
                        .await?;
                    true
                }
                _ => false,
            };
        if !matches {
            return Err(ApiError::refused(
                Reason::DeviceTokenMismatch,
                "the device token does not match this session's copy",
            ));
        }
        if auth.mode == DeviceMode::AsWritten && !state.settings.as_written_devices_allowed() {
            // A session from when this database served the lab: not honoured here.
            session.flush().await?;
            return Err(refusal(Reason::DeviceUnknown));
        }
        // Revoking the device, or logging in on it again, deleted its sessions: this one being
        // here says neither happened. The token's absolute expiry is in the copy.
        let expires_at = facts.expires_at.map(from_unix_seconds).transpose()?;
        if let Err(reason) = check_device(DeviceState { revoked: false, expires_at }, now) {
            session.flush().await?;
            return Err(refusal(reason));
        }
        return live_call(state, session, auth, facts, now).await;
    }
    // C5: no live session (timed out, evicted, or a new browser session): find the token in the
    // database and attach a fresh session to it. A bound device proves its key once more. Boxed:
    // the rare path's state would otherwise enlarge every call's future, which each live call
    // then moves around (#14's device-call profile).
    Box::pin(find_and_reattach(state, session, headers, presented, target, now))
        .await
        .context("re-attaching a device session from the database")
}

async fn find_and_reattach(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    presented: Presented<'_>,
    target: Target<'_>,
    now: Timestamp,
) -> Result<DeviceCall, ApiError> {
    let delay = crate::slow_network::requested(state, headers);
    let (device, rotated_token) = match presented {
        Presented::Token { device_id, token } => {
            match find_hardened(state, device_id, token, now, Rotate::Yes).await? {
                Some(found) => found,
                None => (find_as_written(state, device_id, token, now).await?, None),
            }
        }
        Presented::Proof { device_id, proof } => {
            (find_bound(state, device_id, proof, target, now).await?, None)
        }
    };
    reattach(state, session, headers, device, rotated_token, now, delay).await
}

/// A bound device: the proof is checked (its key, this request, its `jti` spent), then the device
/// registered under this id with that key is found. Anyone may sign a proof with a key of their
/// own; only the device's registered key finds the device.
async fn find_bound(
    state: &AppState,
    device_id: &str,
    proof: &str,
    target: Target<'_>,
    now: Timestamp,
) -> Result<devices::Model, ApiError> {
    let verified = dpop::accept(state, proof, target, None, None).await?;
    let device = devices::Entity::find()
        .filter(devices::Column::DeviceId.eq(device_id))
        .filter(devices::Column::Mode.eq(DeviceMode::Bound.as_str()))
        .filter(devices::Column::DpopJkt.eq(verified.jkt.as_str()))
        .order_by_desc(devices::Column::LastSeenAt)
        .one(&state.db)
        .await?
        .ok_or_else(|| refusal(Reason::DeviceUnknown))?;
    check_device(state_of(&device)?, now).map_err(refusal)?;
    Ok(device)
}

/// The user a device token belongs to, checked against the database alone: for endpoints shared by
/// every scheme (`/api/orders`), which carry the `tl_session` layer rather than `tl_device`. The
/// rules are the same as for a re-attach — live device, current secret or the replaced one inside
/// the grace window, theft detection, a bound device's proof — but nothing is rotated and no
/// session is attached.
#[tracing::instrument(name = "device.check_headers", level = "debug", skip_all)]
pub async fn device_user(
    state: &AppState,
    presented: Presented<'_>,
    target: Target<'_>,
) -> Result<(devices::Model, String), ApiError> {
    let now = state.clock.now();
    let device = match presented {
        Presented::Token { device_id, token } => {
            match find_hardened(state, device_id, token, now, Rotate::No).await? {
                Some((device, _)) => device,
                None => find_as_written(state, device_id, token, now).await?,
            }
        }
        Presented::Proof { device_id, proof } => {
            find_bound(state, device_id, proof, target, now).await?
        }
    };
    let username = username_of(state, device.user_id).await?;
    Ok((device, username))
}

fn refusal(reason: Reason) -> ApiError {
    let message = match reason {
        Reason::DeviceRevoked => "this device was revoked",
        Reason::DeviceTokenExpired => "the device token reached its absolute lifetime",
        Reason::DeviceTokenReused => {
            "a replaced device secret was presented again; the device is revoked"
        }
        _ => "no live device matches this id and token",
    };
    ApiError::refused(reason, message)
}

/// A call on a live device session: nothing read but the session. The idle expiry slides with
/// one write a minute (`SessionTimes::touched`), and the device's `last_seen_at` with it.
async fn live_call(
    state: &AppState,
    session: &Session,
    auth: DeviceAuth,
    mut facts: DeviceFacts,
    now: Timestamp,
) -> Result<DeviceCall, ApiError> {
    let mut auth = auth;
    if let Some(times) = auth.times.touched(&state.session_policy, now) {
        auth.times = times;
        facts.last_seen_at = now.unix_timestamp();
        auth.facts = Some(facts.clone());
        // Boxed: the write-back comes at most once a write-back step (a minute by default), and
        // its statement's future, inline, would enlarge every call's.
        Box::pin(write_back(state, session, &auth, now)).await?;
    }
    let device = KnownDevice {
        id: auth.device_pk,
        device_id: auth.device_id.clone(),
        mode: auth.mode,
        facts,
        revoked: false,
    };
    let dpop_nonce = next_nonce(state, auth.mode)?;
    Ok(DeviceCall { auth, device, renewed: false, rotated_token: None, dpop_nonce })
}

fn next_nonce(
    state: &AppState,
    mode: DeviceMode,
) -> Result<Option<(HeaderName, HeaderValue)>, ApiError> {
    if mode == DeviceMode::Bound { dpop::current_nonce(state) } else { Ok(None) }
}

/// The session's copy with its slid times, and the device's activity.
async fn write_back(
    state: &AppState,
    session: &Session,
    auth: &DeviceAuth,
    now: Timestamp,
) -> Result<(), ApiError> {
    copy::write(session, AUTH_KEY, auth).await?;
    mark_seen(state, auth.device_pk, now).await
}

/// Records activity on the device: one update, no read.
async fn mark_seen(state: &AppState, device_pk: i64, now: Timestamp) -> Result<(), ApiError> {
    devices::Entity::update_many()
        .col_expr(devices::Column::LastSeenAt, Expr::value(now.unix_timestamp()))
        .filter(devices::Column::Id.eq(device_pk))
        .exec(&state.db)
        .await
        .context("recording the device's activity")?;
    Ok(())
}

/// Attaches a fresh session to `device`, found live by its token or its key.
#[tracing::instrument(name = "device.reattach", skip_all)]
async fn reattach(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    device: devices::Model,
    rotated_token: Option<String>,
    now: Timestamp,
    delay: Option<std::time::Duration>,
) -> Result<DeviceCall, ApiError> {
    // Demo: held between finding the device and attaching its session, the window a revocation
    // can fall into (see below).
    crate::slow_network::hold(delay).await;
    let mode = mode_of(&device)?;
    let token_digest = match mode {
        DeviceMode::AsWritten => device.token.clone(),
        DeviceMode::Hardened => device.token_hash.clone(),
        DeviceMode::Bound => device.dpop_jkt.clone(),
    }
    .ok_or_else(|| ApiError::internal(format!("{} device without its token", mode.as_str())))?;
    let auth = DeviceAuth {
        user_id: device.user_id,
        username: username_of(state, device.user_id).await?,
        device_pk: device.id,
        device_id: device.device_id.clone(),
        mode,
        token_digest,
        times: state.session_policy.start(now),
        facts: Some(DeviceFacts { last_seen_at: now.unix_timestamp(), ..DeviceFacts::of(&device) }),
    };
    let owner =
        SessionOwner::start(state, device.user_id, Scheme::Device, Some(device.id), headers)?;
    // A new session id, never the one the expired cookie carried.
    crate::sessions::renew_id(session).await?;
    session.insert(OWNER_KEY, &owner).await?;
    copy::write(session, AUTH_KEY, &auth).await?;
    session.save().await?;
    // The device was live when it was read, but a revocation may have committed since, after
    // deleting the device's sessions and so before this one existed. Read once more: revoked now
    // means this session goes too. A revocation that commits after this read finds the session
    // (it ends the device's sessions once more after committing, `revoke_where`), so one of the
    // two always sees the other. A new login on the device meanwhile (a new epoch, which also
    // lifts a revocation) has replaced the secret this session was attached with: it goes too.
    let now_stored = devices::Entity::find_by_id(device.id).one(&state.db).await?;
    let verdict = match now_stored {
        Some(row) if row.revoked_at.is_some() => Some(Reason::DeviceRevoked),
        Some(row) if row.login_epoch != device.login_epoch => Some(Reason::DeviceUnknown),
        Some(_) => None,
        None => Some(Reason::DeviceUnknown),
    };
    if let Some(reason) = verdict {
        session.delete().await?;
        return Err(refusal(reason));
    }
    mark_seen(state, device.id, now).await?;
    let device = KnownDevice {
        facts: DeviceFacts { last_seen_at: now.unix_timestamp(), ..DeviceFacts::of(&device) },
        ..KnownDevice::of(&device)?
    };
    tracing::info!(
        device = device.id,
        rotated = rotated_token.is_some(),
        "device session re-attached from the database"
    );
    let dpop_nonce = next_nonce(state, mode)?;
    Ok(DeviceCall { auth, device, renewed: true, rotated_token, dpop_nonce })
}

async fn username_of(state: &AppState, user_id: i64) -> Result<String, ApiError> {
    crate::entities::users::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .map(|u| u.username)
        .ok_or_else(|| ApiError::internal("device of a missing user"))
}

/// As written: the token is the device id, compared as sent.
async fn find_as_written(
    state: &AppState,
    device_id: &str,
    token: &str,
    now: Timestamp,
) -> Result<devices::Model, ApiError> {
    if !state.settings.as_written_devices_allowed() {
        // A database that once served the demo may hold such devices; they are not honoured.
        return Err(refusal(Reason::DeviceUnknown));
    }
    let candidates = devices::Entity::find()
        .filter(devices::Column::DeviceId.eq(device_id))
        .filter(devices::Column::Mode.eq(DeviceMode::AsWritten.as_str()))
        .order_by_desc(devices::Column::LastSeenAt)
        .all(&state.db)
        .await?;
    let device = candidates
        .into_iter()
        .find(|row| row.token.as_deref().is_some_and(|stored| same_secret(stored, token)))
        .ok_or_else(|| refusal(Reason::DeviceUnknown))?;
    check_device(state_of(&device)?, now).map_err(refusal)?;
    Ok(device)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rotate {
    /// A re-attach: a match of the current secret replaces it.
    Yes,
    /// A check on an endpoint shared by the schemes: the secret stays as it is.
    No,
}

/// Hardened: the secret is looked up by its hash; on a re-attach a match rotates it. `None` when no
/// hardened device knows this secret at all.
async fn find_hardened(
    state: &AppState,
    device_id: &str,
    token: &str,
    now: Timestamp,
    rotate: Rotate,
) -> Result<Option<(devices::Model, Option<String>)>, ApiError> {
    let sent_hash = storage_hash(token);
    let current = devices::Entity::find()
        .filter(devices::Column::TokenHash.eq(sent_hash.as_str()))
        .one(&state.db)
        .await?;
    if let Some(device) = current.filter(|d| d.device_id == device_id) {
        check_device(state_of(&device)?, now).map_err(refusal)?;
        if rotate == Rotate::No {
            return Ok(Some((device, None)));
        }
        let fresh = new_token(state.secrets.as_ref())?;
        // Only one of any number of concurrent re-attaches with this secret rotates it; the others
        // find it as the previous secret, within the grace window.
        let rotated = devices::Entity::update_many()
            .col_expr(devices::Column::PreviousTokenHash, Expr::value(sent_hash.clone()))
            .col_expr(devices::Column::TokenHash, Expr::value(storage_hash(&fresh)))
            .col_expr(devices::Column::RotatedAt, Expr::value(now.unix_timestamp()))
            .filter(devices::Column::Id.eq(device.id))
            .filter(devices::Column::TokenHash.eq(sent_hash.as_str()))
            .filter(devices::Column::RevokedAt.is_null())
            .exec(&state.db)
            .await?;
        let device = devices::Entity::find_by_id(device.id)
            .one(&state.db)
            .await?
            .ok_or_else(|| refusal(Reason::DeviceUnknown))?;
        if rotated.rows_affected == 1 {
            return Ok(Some((device, Some(fresh))));
        }
        return previous(state, device, now).await.map(|d| Some((d, None)));
    }
    let replaced = devices::Entity::find()
        .filter(devices::Column::PreviousTokenHash.eq(sent_hash.as_str()))
        .filter(devices::Column::DeviceId.eq(device_id))
        .one(&state.db)
        .await?;
    match replaced {
        Some(device) => previous(state, device, now).await.map(|d| Some((d, None))),
        None => Ok(None),
    }
}

/// The client sent the secret the last rotation replaced.
async fn previous(
    state: &AppState,
    device: devices::Model,
    now: Timestamp,
) -> Result<devices::Model, ApiError> {
    check_device(state_of(&device)?, now).map_err(refusal)?;
    let rotated_at = device.rotated_at.map(from_unix_seconds).transpose()?.unwrap_or(now);
    match previous_secret(&state.device_policy, rotated_at, now) {
        PreviousSecret::WithinGrace => Ok(device),
        PreviousSecret::Reused => {
            tracing::warn!(
                device = device.id,
                "replaced device secret presented again: revoking the device"
            );
            // With its sessions: the thief's, and the victim's, are worthless from now on.
            revoke_where(state, devices::Column::Id.eq(device.id)).await?;
            Err(refusal(Reason::DeviceTokenReused))
        }
    }
}

/// What a device login produced: the token the client must send from now on (none for a bound
/// device), the device row, and the server session's copy.
pub struct DeviceLogin {
    pub token: Option<String>,
    pub device: devices::Model,
    pub auth: DeviceAuth,
    /// `None` as written: the article's token never expires.
    pub token_expires_at: Option<Timestamp>,
}

/// How a device logs in: the mode, and for a bound device the thumbprint of the key its checked
/// proof was signed with.
#[derive(Debug, Clone)]
pub enum LoginMode {
    AsWritten,
    Hardened,
    Bound { jkt: String },
}

impl LoginMode {
    fn mode(&self) -> DeviceMode {
        match self {
            Self::AsWritten => DeviceMode::AsWritten,
            Self::Hardened => DeviceMode::Hardened,
            Self::Bound { .. } => DeviceMode::Bound,
        }
    }
}

/// Logs `user` (whose password was just checked) in on a device: its row is created or replaced
/// (a new token or key, a revocation lifted, the sessions of earlier logins ended), and a fresh
/// `tl_device` session holds the token's copy.
#[tracing::instrument(name = "device.log_in", skip_all)]
pub async fn log_in(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    user: &users::Model,
    device_id: String,
    login_mode: LoginMode,
) -> Result<DeviceLogin, ApiError> {
    let now = state.clock.now();
    let mode = login_mode.mode();
    let lifetime_end = now + state.device_policy.token_lifetime;
    // (what the client sends, its hash, the registered key, the copy the session keeps, the end)
    let (token, token_hash, dpop_jkt, session_digest, expires_at) = match login_mode {
        // The article: the device id is the token, kept as is, forever.
        LoginMode::AsWritten => (Some(device_id.clone()), None, None, device_id.clone(), None),
        LoginMode::Hardened => {
            let secret = new_token(state.secrets.as_ref())?;
            let hash = storage_hash(&secret);
            (Some(secret), Some(hash.clone()), None, hash, Some(lifetime_end))
        }
        LoginMode::Bound { jkt } => (None, None, Some(jkt.clone()), jkt, Some(lifetime_end)),
    };
    let name = user_agent(headers);
    let row = devices::ActiveModel {
        user_id: Set(user.id),
        device_id: Set(device_id.clone()),
        name: Set(name),
        mode: Set(mode.as_str().to_owned()),
        token: Set((mode == DeviceMode::AsWritten).then(|| device_id.clone())),
        token_hash: Set(token_hash),
        previous_token_hash: Set(None),
        rotated_at: Set(None),
        created_at: Set(now.unix_timestamp()),
        last_seen_at: Set(now.unix_timestamp()),
        expires_at: Set(expires_at.map(|t| t.unix_timestamp())),
        revoked_at: Set(None),
        login_epoch: Set(0),
        dpop_jkt: Set(dpop_jkt),
        ..Default::default()
    };
    // Logging in again on the same device replaces its token and lifts a revocation; the
    // sessions of earlier logins on it are deleted below.
    devices::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([devices::Column::UserId, devices::Column::DeviceId])
                .value(
                    devices::Column::LoginEpoch,
                    Expr::col((devices::Entity, devices::Column::LoginEpoch)).add(1),
                )
                .update_columns([
                    devices::Column::Name,
                    devices::Column::Mode,
                    devices::Column::Token,
                    devices::Column::TokenHash,
                    devices::Column::PreviousTokenHash,
                    devices::Column::RotatedAt,
                    devices::Column::CreatedAt,
                    devices::Column::LastSeenAt,
                    devices::Column::ExpiresAt,
                    devices::Column::RevokedAt,
                    devices::Column::DpopJkt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await
        .context("storing the device at login")?;
    let device = devices::Entity::find()
        .filter(devices::Column::UserId.eq(user.id))
        .filter(devices::Column::DeviceId.eq(device_id.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("device row missing after upsert"))?;
    // The sessions of earlier logins on this device end with them: a live device session is
    // always one of the device's current login.
    state
        .session_store
        .end_of_user(&state.db, user.id, |s| s.device_pk == Some(device.id))
        .await
        .context("ending the sessions of earlier logins on the device")?;
    let auth = DeviceAuth {
        user_id: user.id,
        username: user.username.clone(),
        device_pk: device.id,
        device_id,
        mode,
        token_digest: session_digest,
        times: state.session_policy.start(now),
        facts: Some(DeviceFacts::of(&device)),
    };
    let owner = SessionOwner::start(state, user.id, Scheme::Device, Some(device.id), headers)?;
    crate::sessions::renew_id(session).await?;
    session.insert(OWNER_KEY, &owner).await?;
    copy::write(session, AUTH_KEY, &auth).await?;
    session.save().await?;
    if let Err(refused) = still_current_fail_safe(state, user).await {
        // The password changed while this login ran: what it created must not outlive the change.
        revoke_where(state, devices::Column::Id.eq(device.id)).await?;
        session.flush().await?;
        return Err(refused);
    }
    Ok(DeviceLogin { token, device, auth, token_expires_at: expires_at })
}

/// Revokes the devices matching `condition` and deletes every server session attached to them, in
/// one transaction: a revoked device has no session left to be honoured.
#[tracing::instrument(name = "device.revoke", skip_all)]
pub async fn revoke_where(
    state: &AppState,
    condition: sea_orm::sea_query::SimpleExpr,
) -> Result<(), ApiError> {
    let txn = state.db.begin().await.context("revoking devices")?;
    crate::auth::signout::revoke_devices(
        &txn,
        &state.session_store,
        condition.clone(),
        state.clock.now(),
    )
    .await
    .context("revoking devices")?;
    txn.commit().await.context("committing a device revocation")?;
    crate::auth::signout::end_revoked_device_sessions_again(state, condition)
        .await
        .context("ending the revoked devices' sessions after the commit")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn same_secret_is_equality_of_the_whole_text() {
        let digest = "57484f623ef7aab628fe78877cc9d476f06e3993911397b2ddc595682ad03fbd";
        let mut first = digest.to_owned();
        first.replace_range(0..1, "6");
        let mut middle = digest.to_owned();
        middle.replace_range(31..32, "e");
        let mut last = digest.to_owned();
        last.replace_range(63..64, "c");
        let cases = [
            ("the same digest", digest, digest, true),
            ("the first byte differs", digest, first.as_str(), false),
            ("the last byte differs", digest, last.as_str(), false),
            ("a byte in a middle word differs", digest, middle.as_str(), false),
            ("every byte differs", digest, &"x".repeat(64), false),
            ("a prefix", digest, &digest[..56], false),
            ("a prefix in the last word", digest, &digest[..63], false),
            ("a token shorter than a word", "abc", "abc", true),
            ("within a short last word", "0123456789", "0123456788", false),
            ("zero bytes are not padding", "abc", "abc\0", false),
            ("empty beside empty", "", "", true),
            ("empty beside a digest", "", digest, false),
        ];
        for (what, a, b, same) in cases {
            assert_eq!(same_secret(a, b), same, "{what}");
            assert_eq!(same_secret(b, a), same, "{what}, swapped");
        }
    }
}
