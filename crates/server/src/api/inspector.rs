//! The server-state inspector: the rows that matter for one user, as the lab shows them live.
//!
//! Demo profile only (routed with the other demo endpoints, so production answers 404). It never
//! returns a secret: stored hashes appear as short prefixes, and the one credential the database
//! keeps in plain text — an as-written device token, which is the device id — is masked.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde::Deserialize;
use tokenlab_core::device::{DeviceMode, check_device};
use tokenlab_core::display::{hash_prefix, mask_secret};
use tokenlab_core::session::SessionTimes;
use tokenlab_core::wire::{
    IdempotencyKeyState, InspectedDevice, InspectedDeviceState, InspectedFamily,
    InspectedFormToken, InspectedIdempotencyKey, InspectedOrder, InspectedRefreshToken,
    InspectedSession, InspectedSessionState, InspectedTimes, InspectedTokenState, InspectedUser,
    InspectorQuery, ServerState,
};
use tokenlab_core::{Clock as _, Reason, Timestamp};

use crate::api::refusals::{DEMO_ONLY, refusals};
use crate::clock::from_unix_seconds;
use crate::entities::{
    devices, form_tokens, idempotency_keys, orders, refresh_families, refresh_tokens, users,
};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

refusals!(InspectRefusals = DEMO_ONLY, &[Reason::InvalidQuery]);

/// The rows that matter for one user, secrets masked (demo profile only).
///
/// A name no account has is `not_found`.
#[utoipa::path(get, path = "/demo/inspector", tag = "demo", params(InspectorQuery),
    responses((status = 200, body = ServerState), InspectRefusals))]
pub(super) async fn inspect(
    State(state): State<AppState>,
    query: Result<Query<InspectorQuery>, QueryRejection>,
) -> Result<ApiJson<ServerState>, ApiError> {
    // Routed only in the demo profile; checked again so the rule does not hang on routing alone.
    if state.demo_clock.is_none() {
        return Err(ApiError::refused(
            Reason::NotFound,
            "the inspector exists only in the demo profile",
        ));
    }
    let Query(query) = query
        .map_err(|rejection| ApiError::refused(Reason::InvalidQuery, rejection.body_text()))?;
    let username = query.username.as_deref().unwrap_or(crate::app::DEMO_USERNAME);
    let user = users::Entity::find()
        .filter(users::Column::Username.eq(username))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::refused(Reason::NotFound, "no user with this name"))?;
    let now = state.clock.now();
    Ok(ApiJson(ServerState {
        user: InspectedUser { id: user.id, username: user.username },
        now,
        sessions: sessions_of(&state, user.id, now).await?,
        devices: devices_of(&state, user.id, now).await?,
        refresh_families: families_of(&state, user.id, now).await?,
        form_tokens: form_tokens_of(&state, user.id).await?,
        idempotency_keys: idempotency_keys_of(&state, user.id).await?,
        orders: orders::Entity::find()
            .filter(orders::Column::UserId.eq(user.id))
            .order_by_asc(orders::Column::Id)
            .all(&state.db)
            .await?
            .into_iter()
            .map(|o| InspectedOrder { id: o.id, item: o.item, quantity: o.quantity })
            .collect(),
        cross_site_refusals: crate::demo_events::read(
            &state.db,
            crate::demo_events::CROSS_SITE_REFUSED,
        )
        .await?,
    }))
}

/// What the inspector needs of a session's data, whichever scheme wrote it.
#[derive(Deserialize)]
struct SessionLogin {
    user_id: i64,
    device_id: Option<String>,
    mode: Option<DeviceMode>,
    times: SessionTimes,
}

async fn sessions_of(
    state: &AppState,
    user_id: i64,
    now: Timestamp,
) -> Result<Vec<InspectedSession>, ApiError> {
    // The user's sessions from the store's per-user index; whose login each holds is in its data.
    let mut found = Vec::new();
    for row in state.session_store.of_user(&state.db, user_id).await? {
        let Ok(data) = serde_json::from_str::<serde_json::Value>(&row.data) else { continue };
        for (key, cookie) in [
            (crate::auth::session::AUTH_KEY, crate::auth::session::SESSION_COOKIE),
            (crate::auth::device::AUTH_KEY, crate::auth::device::DEVICE_COOKIE),
        ] {
            let Some(login) = data
                .get(key)
                .and_then(|value| crate::sessions::copy::decode::<SessionLogin>(value.clone()).ok())
                .filter(|login| login.user_id == user_id)
            else {
                continue;
            };
            let state = match login.times.check(now) {
                Ok(()) => InspectedSessionState::Live,
                Err(tokenlab_core::session::Expired::Idle) => InspectedSessionState::IdleExpired,
                Err(tokenlab_core::session::Expired::Absolute) => {
                    InspectedSessionState::AbsoluteExpired
                }
            };
            let as_written = login.mode == Some(DeviceMode::AsWritten);
            found.push(InspectedSession {
                cookie: cookie.to_owned(),
                id_hash_prefix: hash_prefix(&row.id_hash),
                device_id: login.device_id.map(|id| if as_written { mask_secret(&id) } else { id }),
                times: InspectedTimes {
                    started_at: login.times.started_at,
                    idle_expires_at: login.times.idle_expires_at,
                    absolute_expires_at: login.times.absolute_expires_at,
                },
                state,
            });
        }
    }
    found.sort_by_key(|s| s.times.started_at);
    Ok(found)
}

async fn devices_of(
    state: &AppState,
    user_id: i64,
    now: Timestamp,
) -> Result<Vec<InspectedDevice>, ApiError> {
    let rows = devices::Entity::find()
        .filter(devices::Column::UserId.eq(user_id))
        .order_by_asc(devices::Column::Id)
        .all(&state.db)
        .await?;
    rows.into_iter()
        .map(|d| {
            let checked = crate::auth::device::state_of(&d)?;
            let expires_at = checked.expires_at;
            // The same rule every device request is checked by.
            let device_state = match check_device(checked, now) {
                Ok(()) => InspectedDeviceState::Live,
                Err(Reason::DeviceRevoked) => InspectedDeviceState::Revoked,
                Err(_) => InspectedDeviceState::Expired,
            };
            let mode = crate::auth::device::mode_of(&d)?;
            // As written, the device id is the token: it is masked like one, whatever is stored.
            let as_written = mode == DeviceMode::AsWritten;
            let device_id =
                if as_written { mask_secret(&d.device_id) } else { d.device_id.clone() };
            let stored_token = match (&d.token, &d.token_hash, &d.dpop_jkt) {
                (Some(plain), _, _) => format!("plain text: {}", mask_secret(plain)),
                (None, Some(hash), _) => format!("SHA-256 {}", hash_prefix(hash)),
                // A bound device has no secret: the public key's thumbprint is all there is.
                (None, None, Some(jkt)) => {
                    format!("no secret; key thumbprint {}", hash_prefix(jkt))
                }
                (None, None, None) => "nothing (logged out)".to_owned(),
            };
            Ok(InspectedDevice {
                id: d.id,
                device_id,
                mode,
                stored_token,
                previous_hash_prefix: d.previous_token_hash.as_deref().map(hash_prefix),
                rotated_at: d.rotated_at.map(from_unix_seconds).transpose()?,
                last_seen_at: from_unix_seconds(d.last_seen_at)?,
                expires_at,
                state: device_state,
            })
        })
        .collect()
}

async fn families_of(
    state: &AppState,
    user_id: i64,
    now: Timestamp,
) -> Result<Vec<InspectedFamily>, ApiError> {
    let families = refresh_families::Entity::find()
        .filter(refresh_families::Column::UserId.eq(user_id))
        .order_by_asc(refresh_families::Column::CreatedAt)
        .all(&state.db)
        .await?;
    let ids: Vec<String> = families.iter().map(|f| f.id.clone()).collect();
    let tokens = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::FamilyId.is_in(ids))
        .order_by_asc(refresh_tokens::Column::IssuedAt)
        .all(&state.db)
        .await?;
    families
        .into_iter()
        .map(|family| {
            let absolute_expires_at = from_unix_seconds(family.absolute_expires_at)?;
            let revoked = family.revoked_at.is_some();
            let family_state = match (&family.revoked_reason, revoked) {
                (Some(why), _) => why.clone(),
                (None, true) => "revoked".to_owned(),
                (None, false) if now >= absolute_expires_at => "expired".to_owned(),
                (None, false) => "active".to_owned(),
            };
            let chain = tokens
                .iter()
                .filter(|t| t.family_id == family.id)
                .map(|t| {
                    let expires_at = from_unix_seconds(t.expires_at)?;
                    let token_state = if t.rotated_at.is_some() {
                        InspectedTokenState::Rotated
                    } else if revoked {
                        InspectedTokenState::Revoked
                    } else if now >= expires_at {
                        InspectedTokenState::Expired
                    } else {
                        InspectedTokenState::Current
                    };
                    Ok(InspectedRefreshToken {
                        hash_prefix: hash_prefix(&t.token_hash),
                        parent_hash_prefix: t.parent_hash.as_deref().map(hash_prefix),
                        issued_at: from_unix_seconds(t.issued_at)?,
                        expires_at,
                        state: token_state,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(InspectedFamily {
                id_prefix: hash_prefix(&family.id),
                created_at: from_unix_seconds(family.created_at)?,
                absolute_expires_at,
                state: family_state,
                tokens: chain,
            })
        })
        .collect()
}

async fn form_tokens_of(
    state: &AppState,
    user_id: i64,
) -> Result<Vec<InspectedFormToken>, ApiError> {
    form_tokens::Entity::find()
        .filter(form_tokens::Column::UserId.eq(user_id))
        .order_by_asc(form_tokens::Column::CreatedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|t| {
            Ok(InspectedFormToken {
                hash_prefix: hash_prefix(&t.token_hash),
                expires_at: from_unix_seconds(t.expires_at)?,
                spent_on_order: t.order_id,
            })
        })
        .collect()
}

async fn idempotency_keys_of(
    state: &AppState,
    user_id: i64,
) -> Result<Vec<InspectedIdempotencyKey>, ApiError> {
    idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::UserId.eq(user_id))
        .order_by_asc(idempotency_keys::Column::ExpiresAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|k| {
            Ok(InspectedIdempotencyKey {
                key: k.key,
                state: if k.finished {
                    IdempotencyKeyState::Finished
                } else {
                    IdempotencyKeyState::InFlight
                },
                response_status: k.response_status,
                expires_at: from_unix_seconds(k.expires_at)?,
            })
        })
        .collect()
}
