//! Scheme 1 of the article: the device token (claims C4 and C5), as written and hardened.
//!
//! At login the client sends its device id. The server keeps a token for that device in the
//! database *and* in a server session of its own (cookie `tl_device`). Every protected call sends
//! `X-Device-Id` and `X-Device-Token`; the token is compared with the session's copy. When the
//! session has timed out or is gone, the token is looked up in the database and a fresh session is
//! attached to it: the user never logs in again. The rules of the two modes live in
//! `tokenlab_core::device`; this module applies them to rows and sessions.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    Set, TransactionTrait as _,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokenlab_core::device::{
    DeviceMode, DeviceState, PreviousSecret, check_device, previous_secret, validate_device_id,
};
use tokenlab_core::display::mask_secret;
use tokenlab_core::session::SessionTimes;
use tokenlab_core::signout::Scheme;
use tokenlab_core::{Reason, Timestamp};
use tower_sessions::Session;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::session::UserView;
use crate::clock::from_unix_seconds;
use crate::entities::devices;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::guard::ClientIp;
use crate::login::{authenticate, still_current};
use crate::secrets::{new_token, storage_hash};
use crate::sessions::{OWNER_KEY, SessionOwner, user_agent};
use crate::slow_network;
use crate::state::AppState;

pub const DEVICE_COOKIE: &str = "tl_device";
pub(crate) const AUTH_KEY: &str = "device_auth";

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(list_devices))
        .routes(routes!(revoke_device))
        .routes(routes!(logout))
        .routes(routes!(logout_all));
    state.cookies.with_session(routes, state.session_store.clone(), DEVICE_COOKIE)
}

/// The server session's copy of the device's token, as the article prescribes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceAuth {
    user_id: i64,
    username: String,
    device_pk: i64,
    device_id: String,
    mode: DeviceMode,
    /// As written: the token itself. Hardened: its SHA-256 (the session store is a database too).
    token_digest: String,
    /// The device's `login_epoch` when this session was attached: a later login on the device
    /// (even after a revocation) makes this session worthless.
    epoch: i64,
    times: SessionTimes,
}

fn digest(mode: DeviceMode, token: &str) -> String {
    match mode {
        DeviceMode::AsWritten => token.to_owned(),
        DeviceMode::Hardened => storage_hash(token),
    }
}

fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn mode_of(row: &devices::Model) -> Result<DeviceMode, ApiError> {
    DeviceMode::parse(&row.mode)
        .ok_or_else(|| ApiError::internal(format!("unknown device mode {}", row.mode)))
}

pub(crate) fn state_of(row: &devices::Model) -> Result<DeviceState, ApiError> {
    Ok(DeviceState {
        revoked: row.revoked_at.is_some(),
        expires_at: row.expires_at.map(from_unix_seconds).transpose()?,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLogin {
    #[schema(example = "alice")]
    username: String,
    #[schema(example = "wonderland-demo")]
    password: String,
    #[schema(example = "dev-4f3a9c21d0e8")]
    device_id: String,
    #[schema(value_type = String, example = "hardened")]
    mode: DeviceMode,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// The server's id for this device (used by the device list).
    id: i64,
    /// Masked: as written, the device id is the token.
    device_id_masked: String,
    name: String,
    #[schema(value_type = String, example = "hardened")]
    mode: DeviceMode,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_seen_at: Timestamp,
    /// `null` as written: the article's token never expires.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    token_expires_at: Option<Timestamp>,
    revoked: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSessionInfo {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    idle_expires_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceLoginResponse {
    /// Send it as `X-Device-Token`. As written it equals the device id.
    device_token: String,
    device: DeviceView,
    session: DeviceSessionInfo,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    token_expires_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceMe {
    user: UserView,
    device: DeviceView,
    session: DeviceSessionInfo,
    /// True when the server session had expired or was gone and was re-attached from the database
    /// (also signalled by `X-Session-Renewed: 1`).
    renewed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<DeviceListEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceListEntry {
    #[serde(flatten)]
    device: DeviceView,
    /// The device making this request.
    current: bool,
}

fn view(row: &devices::Model) -> Result<DeviceView, ApiError> {
    Ok(DeviceView {
        id: row.id,
        device_id_masked: mask_secret(&row.device_id),
        name: row.name.clone(),
        mode: mode_of(row)?,
        created_at: from_unix_seconds(row.created_at)?,
        last_seen_at: from_unix_seconds(row.last_seen_at)?,
        token_expires_at: row.expires_at.map(from_unix_seconds).transpose()?,
        revoked: row.revoked_at.is_some(),
    })
}

/// An authenticated device call: who, which device, and what the response must tell the client.
struct DeviceCall {
    auth: DeviceAuth,
    device: devices::Model,
    renewed: bool,
    /// A hardened re-attach rotated the secret: the client must store this one.
    rotated_token: Option<String>,
}

impl DeviceCall {
    fn respond(&self, status: StatusCode, body: impl Serialize) -> Response {
        let mut response = (status, axum::Json(body)).into_response();
        self.decorate(&mut response);
        response
    }

    fn no_content(&self) -> Response {
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
            response.headers_mut().insert("x-device-token", value);
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// The interception the article describes, for every protected device call.
async fn authenticate_device(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<DeviceCall, ApiError> {
    let (Some(device_id), Some(token)) =
        (header(headers, "x-device-id"), header(headers, "x-device-token"))
    else {
        return Err(ApiError::refused(
            Reason::DeviceCredentialsMissing,
            "send X-Device-Id and X-Device-Token",
        ));
    };
    let now = state.clock.now();
    if let Some(auth) = session.get::<DeviceAuth>(AUTH_KEY).await.map_err(ApiError::internal)?
        && auth.times.check(now).is_ok()
    {
        // C4: the token sent is compared with the session's copy; a valid cookie is not enough.
        let matches = auth.device_id == device_id
            && same_secret(&digest(auth.mode, token), &auth.token_digest);
        if !matches {
            return Err(ApiError::refused(
                Reason::DeviceTokenMismatch,
                "the device token does not match this session's copy",
            ));
        }
        // Revocation and expiry take effect at once, also for sessions already attached.
        let device =
            devices::Entity::find_by_id(auth.device_pk).one(&state.db).await?.ok_or_else(|| {
                ApiError::refused(Reason::DeviceUnknown, "this device no longer exists")
            })?;
        if let Err(reason) = check_device(state_of(&device)?, now) {
            session.flush().await?;
            return Err(refusal(reason));
        }
        if device.login_epoch != auth.epoch {
            session.flush().await?;
            return Err(ApiError::refused(
                Reason::DeviceUnknown,
                "this session belongs to an earlier login on this device; log in again",
            ));
        }
        let auth = DeviceAuth { times: auth.times.touch(&state.session_policy, now), ..auth };
        session.insert(AUTH_KEY, &auth).await.map_err(ApiError::internal)?;
        let device = seen(state, device, now).await?;
        return Ok(DeviceCall { auth, device, renewed: false, rotated_token: None });
    }
    // C5: no live session (timed out, evicted, or a new browser session): find the token in the
    // database and attach a fresh session to it.
    reattach(state, session, headers, device_id, token, now).await
}

/// The user a device token belongs to, checked against the database alone: for endpoints shared by
/// every scheme (`/api/orders`), which carry the `tl_session` layer rather than `tl_device`. The
/// rules are the same as for a re-attach — live device, current secret or the replaced one inside
/// the grace window, theft detection — but nothing is rotated and no session is attached.
pub async fn device_user(
    state: &AppState,
    device_id: &str,
    token: &str,
) -> Result<(devices::Model, String), ApiError> {
    let now = state.clock.now();
    let device = match find_hardened(state, device_id, token, now, Rotate::No).await? {
        Some((device, _)) => device,
        None => find_as_written(state, device_id, token, now).await?,
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

async fn seen(
    state: &AppState,
    device: devices::Model,
    now: Timestamp,
) -> Result<devices::Model, ApiError> {
    let mut active: devices::ActiveModel = device.into();
    active.last_seen_at = Set(now.unix_timestamp());
    Ok(active.update(&state.db).await?)
}

async fn reattach(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    device_id: &str,
    token: &str,
    now: Timestamp,
) -> Result<DeviceCall, ApiError> {
    let (device, rotated_token) =
        match find_hardened(state, device_id, token, now, Rotate::Yes).await? {
            Some(found) => found,
            None => (find_as_written(state, device_id, token, now).await?, None),
        };
    let mode = mode_of(&device)?;
    let token_digest = match mode {
        DeviceMode::AsWritten => token.to_owned(),
        DeviceMode::Hardened => device
            .token_hash
            .clone()
            .ok_or_else(|| ApiError::internal("hardened device without a token hash"))?,
    };
    let auth = DeviceAuth {
        user_id: device.user_id,
        username: username_of(state, device.user_id).await?,
        device_pk: device.id,
        device_id: device.device_id.clone(),
        mode,
        token_digest,
        epoch: device.login_epoch,
        times: state.session_policy.start(now),
    };
    let owner =
        SessionOwner::start(state, device.user_id, Scheme::Device, Some(device.id), headers)?;
    // A new session id, never the one the expired cookie carried.
    session.cycle_id().await?;
    session.insert(OWNER_KEY, &owner).await.map_err(ApiError::internal)?;
    session.insert(AUTH_KEY, &auth).await.map_err(ApiError::internal)?;
    session.save().await?;
    let device = seen(state, device, now).await?;
    tracing::info!(
        device = device.id,
        rotated = rotated_token.is_some(),
        "device session re-attached from the database"
    );
    Ok(DeviceCall { auth, device, renewed: true, rotated_token })
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
            devices::Entity::update_many()
                .col_expr(devices::Column::RevokedAt, Expr::value(now.unix_timestamp()))
                .filter(devices::Column::Id.eq(device.id))
                .filter(devices::Column::RevokedAt.is_null())
                .exec(&state.db)
                .await?;
            Err(refusal(Reason::DeviceTokenReused))
        }
    }
}

/// Log in on a device; the server keeps its token in the database and in a session.
#[utoipa::path(post, path = "/device/login", tag = "device", request_body = DeviceLogin,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie: tl_device=…`", body = DeviceLoginResponse),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 422, description = "`invalid_device_id`, `invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DeviceLogin>,
) -> Result<ApiJson<DeviceLoginResponse>, ApiError> {
    validate_device_id(&body.device_id)?;
    if body.mode == DeviceMode::AsWritten && !state.settings.as_written_devices_allowed() {
        return Err(ApiError::refused(
            Reason::InsecureModeDisabled,
            "this server does not accept device tokens as written; log in with mode \"hardened\"",
        ));
    }
    let user = authenticate(&state, &body.username, body.password, client).await?;
    let now = state.clock.now();
    let (token, token_hash, expires_at) = match body.mode {
        // The article: the device id is the token, kept as is, forever.
        DeviceMode::AsWritten => (body.device_id.clone(), None, None),
        DeviceMode::Hardened => {
            let secret = new_token(state.secrets.as_ref())?;
            let hash = storage_hash(&secret);
            (secret, Some(hash), Some(now + state.device_policy.token_lifetime))
        }
    };
    let name = user_agent(&headers);
    let row = devices::ActiveModel {
        user_id: Set(user.id),
        device_id: Set(body.device_id.clone()),
        name: Set(name),
        mode: Set(body.mode.as_str().to_owned()),
        token: Set((body.mode == DeviceMode::AsWritten).then(|| body.device_id.clone())),
        token_hash: Set(token_hash),
        previous_token_hash: Set(None),
        rotated_at: Set(None),
        created_at: Set(now.unix_timestamp()),
        last_seen_at: Set(now.unix_timestamp()),
        expires_at: Set(expires_at.map(|t| t.unix_timestamp())),
        revoked_at: Set(None),
        login_epoch: Set(0),
        ..Default::default()
    };
    // Logging in again on the same device replaces its token and lifts a revocation; the new
    // epoch leaves every session of earlier logins on it worthless.
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
                ])
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
    let device = devices::Entity::find()
        .filter(devices::Column::UserId.eq(user.id))
        .filter(devices::Column::DeviceId.eq(body.device_id.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("device row missing after upsert"))?;
    let auth = DeviceAuth {
        user_id: user.id,
        username: user.username.clone(),
        device_pk: device.id,
        device_id: body.device_id,
        mode: body.mode,
        token_digest: digest(body.mode, &token),
        epoch: device.login_epoch,
        times: state.session_policy.start(now),
    };
    let owner = SessionOwner::start(&state, user.id, Scheme::Device, Some(device.id), &headers)?;
    session.cycle_id().await?;
    session.insert(OWNER_KEY, &owner).await.map_err(ApiError::internal)?;
    session.insert(AUTH_KEY, &auth).await.map_err(ApiError::internal)?;
    session.save().await?;
    if let Err(refused) = still_current(&state.db, &user).await {
        // The password changed while this login ran: what it created must not outlive the change.
        revoke_where(&state, devices::Column::Id.eq(device.id)).await?;
        session.flush().await?;
        return Err(refused);
    }
    Ok(ApiJson(DeviceLoginResponse {
        device_token: token,
        device: view(&device)?,
        session: DeviceSessionInfo { idle_expires_at: auth.times.idle_expires_at },
        token_expires_at: expires_at,
    }))
}

/// A protected call: the device token is checked against the session, or re-attached from the
/// database when the session has timed out.
#[utoipa::path(get, path = "/device/me", tag = "device",
    params(
        ("X-Device-Id" = String, Header, description = "The device id sent at login"),
        ("X-Device-Token" = String, Header, description = "The device token; a hardened re-attach answers with a new one in `X-Device-Token`"),
    ),
    responses(
        (status = 200, description = "`X-Session-Renewed: 1` when re-attached from the database", body = DeviceMe),
        (status = 401, description = "`device_token_mismatch`, `device_unknown`, `device_revoked`, `device_token_expired`, `device_token_reused`, `device_credentials_missing`", body = ErrorBody),
    ))]
async fn me(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate_device(&state, &session, &headers).await?;
    // Demo: held after the session was loaded, as a slow request would be.
    slow_network::hold(slow_network::requested(&state, &headers)).await;
    let body = DeviceMe {
        user: UserView { id: call.auth.user_id, username: call.auth.username.clone() },
        device: view(&call.device)?,
        session: DeviceSessionInfo { idle_expires_at: call.auth.times.idle_expires_at },
        renewed: call.renewed,
    };
    Ok(call.respond(StatusCode::OK, body))
}

/// The caller's devices.
#[utoipa::path(get, path = "/device/devices", tag = "device",
    responses((status = 200, body = DeviceList), (status = 401, description = "as `/device/me`", body = ErrorBody)))]
async fn list_devices(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate_device(&state, &session, &headers).await?;
    let rows = devices::Entity::find()
        .filter(devices::Column::UserId.eq(call.auth.user_id))
        .order_by_desc(devices::Column::LastSeenAt)
        .all(&state.db)
        .await?;
    let devices = rows
        .iter()
        .map(|row| Ok(DeviceListEntry { device: view(row)?, current: row.id == call.device.id }))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(call.respond(StatusCode::OK, DeviceList { devices }))
}

/// Revoke one of the caller's devices: its token and its session stop working at once.
#[utoipa::path(delete, path = "/device/devices/{id}", tag = "device",
    params(("id" = i64, Path, description = "The device's `id` from the device list")),
    responses((status = 204, description = "Revoked"),
              (status = 401, description = "as `/device/me`", body = ErrorBody),
              (status = 404, description = "`not_found`: no such device of yours", body = ErrorBody)))]
async fn revoke_device(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let call = authenticate_device(&state, &session, &headers).await?;
    let target = devices::Entity::find_by_id(id)
        .filter(devices::Column::UserId.eq(call.auth.user_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::refused(Reason::NotFound, "no such device of yours"))?;
    revoke_where(&state, devices::Column::Id.eq(target.id)).await?;
    if target.id == call.device.id {
        session.flush().await?;
    }
    Ok(call.no_content())
}

/// Log this device out: its token is revoked and its session deleted.
#[utoipa::path(post, path = "/device/logout", tag = "device",
    responses((status = 204, description = "Logged out")))]
async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if let Ok(call) = authenticate_device(&state, &session, &headers).await {
        revoke_where(&state, devices::Column::Id.eq(call.device.id)).await?;
    }
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Log out everywhere: every device of the caller is revoked.
#[utoipa::path(post, path = "/device/logout-all", tag = "device",
    responses((status = 204, description = "Every device revoked"),
              (status = 401, description = "as `/device/me`", body = ErrorBody)))]
async fn logout_all(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let call = authenticate_device(&state, &session, &headers).await?;
    revoke_where(&state, devices::Column::UserId.eq(call.auth.user_id)).await?;
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the devices matching `condition` and deletes every server session attached to them, in
/// one transaction: a revoked device has no session left to be honoured.
async fn revoke_where(
    state: &AppState,
    condition: sea_orm::sea_query::SimpleExpr,
) -> Result<(), ApiError> {
    let txn = state.db.begin().await?;
    crate::signout::revoke_devices(&txn, condition, state.clock.now()).await?;
    txn.commit().await?;
    Ok(())
}
