//! Scheme 1 of the article over HTTP: the device token (claims C4 and C5), as written and
//! hardened. The engine (compare, re-attach, rotate, detect theft) is `auth::device`.
//!
//! At login the client sends its device id. The server keeps a token for that device in the
//! database *and* in a server session of its own (cookie `tl_device`). Every protected call sends
//! `X-Device-Id` and `X-Device-Token`; the token is compared with the session's copy. When the
//! session has timed out or is gone, the token is looked up in the database and a fresh session is
//! attached to it: the user never logs in again.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde::Deserialize;
use tokenlab_core::Reason;
use tokenlab_core::device::{DeviceMode, validate_device_id};
use tokenlab_core::display::mask_secret;
use tokenlab_core::wire::credentials::DeviceLogin;
use tokenlab_core::wire::{
    DeviceList, DeviceListEntry, DeviceLoginResponse, DeviceMe, DeviceSessionInfo, DeviceView,
    UserView,
};
use tower_sessions::Session;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{
    DEVICE, DPOP_PROOF, DpopProofHeader, JSON_BODY, PASSWORD_CHECK, PATH_PARAMETER, STATE_CHANGING,
    refusals,
};
use crate::auth;
use crate::auth::device::{
    DEVICE_COOKIE, KnownDevice, LoginMode, authenticate_device, revoke_where,
};
use crate::auth::dpop::{self, RequestTarget};
use crate::auth::password::authenticate;
use crate::clock::from_unix_seconds;
use crate::entities::devices;
use crate::error::{ApiError, ApiJson};
use crate::guard::ClientIp;
use crate::slow_network;
use crate::state::AppState;

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

/// `DELETE /api/device/devices/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct DevicePath {
    /// The device's `id` from the device list (the database numbers rows from 1); another is
    /// `not_found`.
    #[param(minimum = 1)]
    id: i64,
}

refusals!(
    LoginRefusals = STATE_CHANGING,
    JSON_BODY,
    DPOP_PROOF,
    PASSWORD_CHECK,
    &[Reason::InvalidDeviceId, Reason::InsecureModeDisabled],
);
refusals!(DeviceCallRefusals = DEVICE);
refusals!(RevokeDeviceRefusals = STATE_CHANGING, PATH_PARAMETER, DEVICE, &[Reason::NotFound]);
refusals!(LogoutRefusals = STATE_CHANGING);
refusals!(LogoutAllRefusals = STATE_CHANGING, DEVICE);

fn view(device: &KnownDevice) -> Result<DeviceView, ApiError> {
    Ok(DeviceView {
        id: device.id,
        device_id_masked: mask_secret(&device.device_id),
        name: device.facts.name.clone(),
        mode: device.mode,
        created_at: from_unix_seconds(device.facts.created_at)?,
        last_seen_at: from_unix_seconds(device.facts.last_seen_at)?,
        token_expires_at: device.facts.expires_at.map(from_unix_seconds).transpose()?,
        revoked: device.revoked,
    })
}

/// Log in on a device; the server keeps its token in the database and in a session.
///
/// Mode `as_written` is refused (`insecure_mode_disabled`) unless the server allows it: the demo
/// profile does, production only with `--allow-as-written-devices`. Mode `bound` needs a `DPoP`
/// proof of this request: its key is registered as the device's, no token is issued, and every
/// later call of the device carries `X-Device-Id` and a fresh proof by that key instead.
#[utoipa::path(post, path = "/device/login", tag = "device", request_body = DeviceLogin,
    params(DpopProofHeader),
    responses(
        (status = 200, description = "Logged in; `Set-Cookie: tl_device=…`; a bound device also \
            gets the nonce its next proofs carry in `DPoP-Nonce`", body = DeviceLoginResponse),
        LoginRefusals,
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    target: RequestTarget,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DeviceLogin>,
) -> Result<Response, ApiError> {
    validate_device_id(&body.device_id)?;
    let mode = match body.mode {
        DeviceMode::AsWritten if !state.settings.as_written_devices_allowed() => {
            return Err(ApiError::refused(
                Reason::InsecureModeDisabled,
                "this server does not accept device tokens as written; log in with mode \"hardened\"",
            ));
        }
        DeviceMode::AsWritten => LoginMode::AsWritten,
        DeviceMode::Hardened => LoginMode::Hardened,
        // The key is proved before the password is checked: a bad proof costs no hash.
        DeviceMode::Bound => {
            let proof = dpop::presented(&headers)?.ok_or_else(|| {
                ApiError::refused(
                    Reason::DpopProofInvalid,
                    "a bound device logs in with a DPoP proof by its key",
                )
            })?;
            let verified = dpop::accept(&state, proof, target.target(), None, None).await?;
            LoginMode::Bound { jkt: verified.jkt }
        }
    };
    let user = authenticate(&state, &body.username, body.password, client).await?;
    let login =
        auth::device::log_in(&state, &session, &headers, &user, body.device_id, mode).await?;
    let body = DeviceLoginResponse {
        device_token: login.token,
        device: view(&KnownDevice::of(&login.device)?)?,
        session: DeviceSessionInfo { idle_expires_at: login.auth.times.idle_expires_at },
        token_expires_at: login.token_expires_at,
    };
    let mut response = ApiJson(body).into_response();
    if login.auth.mode == DeviceMode::Bound
        && let Some((name, value)) = dpop::current_nonce(&state)?
    {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// A protected call: the device token is checked against the session, or re-attached from the
/// database when the session has timed out.
///
/// A hardened re-attach answers with the device's new token in `X-Device-Token`.
#[utoipa::path(get, path = "/device/me", tag = "device",
    security(("device_id" = [], "device_token" = []), ("device_id" = [])),
    params(DpopProofHeader),
    responses(
        (status = 200, description = "`X-Session-Renewed: 1` when re-attached from the database", body = DeviceMe),
        DeviceCallRefusals,
    ))]
async fn me(
    State(state): State<AppState>,
    session: Session,
    target: RequestTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate_device(&state, &session, &headers, target.target()).await?;
    // Demo: held after the session was loaded, as a slow request would be (a re-attach was held
    // inside, before its session was attached).
    if !call.renewed {
        slow_network::hold(slow_network::requested(&state, &headers)).await;
    }
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
    security(("device_id" = [], "device_token" = []), ("device_id" = [])),
    params(DpopProofHeader),
    responses((status = 200, body = DeviceList), DeviceCallRefusals))]
async fn list_devices(
    State(state): State<AppState>,
    session: Session,
    target: RequestTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate_device(&state, &session, &headers, target.target()).await?;
    let rows = devices::Entity::find()
        .filter(devices::Column::UserId.eq(call.auth.user_id))
        .order_by_desc(devices::Column::LastSeenAt)
        .all(&state.db)
        .await?;
    let devices = rows
        .iter()
        .map(|row| {
            let device = view(&KnownDevice::of(row)?)?;
            Ok(DeviceListEntry { device, current: row.id == call.device.id })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(call.respond(StatusCode::OK, DeviceList { devices }))
}

/// Revoke one of the caller's devices: its token and its session stop working at once.
#[utoipa::path(delete, path = "/device/devices/{id}", tag = "device",
    params(DevicePath, DpopProofHeader),
    security(("device_id" = [], "device_token" = []), ("device_id" = [])),
    responses((status = 204, description = "Revoked"), RevokeDeviceRefusals))]
async fn revoke_device(
    State(state): State<AppState>,
    session: Session,
    target: RequestTarget,
    headers: HeaderMap,
    Path(DevicePath { id }): Path<DevicePath>,
) -> Result<Response, ApiError> {
    let call = authenticate_device(&state, &session, &headers, target.target()).await?;
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
#[utoipa::path(post, path = "/device/logout", tag = "device", params(DpopProofHeader),
    responses((status = 204, description = "Logged out"), LogoutRefusals))]
async fn logout(
    State(state): State<AppState>,
    session: Session,
    target: RequestTarget,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if let Ok(call) = authenticate_device(&state, &session, &headers, target.target()).await {
        revoke_where(&state, devices::Column::Id.eq(call.device.id)).await?;
    }
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Log out everywhere: every device of the caller is revoked.
#[utoipa::path(post, path = "/device/logout-all", tag = "device",
    security(("device_id" = [], "device_token" = []), ("device_id" = [])),
    params(DpopProofHeader),
    responses((status = 204, description = "Every device revoked"), LogoutAllRefusals))]
async fn logout_all(
    State(state): State<AppState>,
    session: Session,
    target: RequestTarget,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let call = authenticate_device(&state, &session, &headers, target.target()).await?;
    revoke_where(&state, devices::Column::UserId.eq(call.auth.user_id)).await?;
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
