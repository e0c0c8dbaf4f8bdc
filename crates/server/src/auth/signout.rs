//! A user's sign-ins across every scheme: listing them, and ending one or all of them.
//!
//! What "a sign-in" is per scheme (`core::signout::Scheme`):
//! - **session**: one live server session of the session-id scheme (cookie `tl_session`);
//! - **device**: one live device — its token, and whatever `tl_device` sessions are attached to it
//!   (the token re-attaches a new session whenever one times out, so the device is what the user
//!   ends, not one of its sessions);
//! - **refresh**: one active refresh-token family, with every access token minted from it (access
//!   tokens carry the family's handle as `sid`, see `revocation`).
//!
//! Ending is done in the database, in one transaction where several things end together, so that
//! every instance sees the same outcome; the only process-local part is the revoked-families cache,
//! which each instance reloads within `core::signout::ACCESS_REVOCATION_BOUND`.

use sea_orm::sea_query::{Expr, ExprTrait as _, SimpleExpr};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DbErr, EntityTrait as _, QueryFilter as _,
    QueryOrder as _,
};
use tokenlab_core::Timestamp;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::session::SessionTimes;
use tokenlab_core::signout::{Scheme, SessionRef};
use tokenlab_core::wire::{ActiveSession, Ended};

use crate::auth::revocation::family_handle;
use crate::auth::session::{AUTH_KEY as SESSION_AUTH_KEY, SessionAuth};
use crate::clock::from_unix_seconds;
use crate::entities::{devices, refresh_families, refresh_tokens};
use crate::error::ApiError;
use crate::sessions::{AnySessionStore, OWNER_KEY, SessionOwner};
use crate::state::AppState;

/// The caller's own sign-in, which "keep current" spares and the list marks as `current`.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The handle of the caller's session-scheme session.
    pub session_handle: Option<String>,
    /// The caller's device (`devices.id`).
    pub device_pk: Option<i64>,
    /// The handle (`sid`) of the refresh family the caller's access token was minted from.
    pub family_handle: Option<String>,
}

/// The user's live sign-ins, newest first within each scheme.
#[tracing::instrument(name = "signout.list", skip_all)]
pub async fn list(
    state: &AppState,
    user_id: i64,
    current: &Current,
) -> Result<Vec<ActiveSession>, ApiError> {
    let now = state.clock.now();
    let mut entries = Vec::new();

    let rows = state.session_store.of_user(&state.db, user_id).await?;
    let mut session_entries = Vec::new();
    for row in rows.into_iter().filter(|row| row.device_pk.is_none()) {
        let data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.data).map_err(ApiError::internal)?;
        let (Some(owner), Some(auth)) = (
            data.get(OWNER_KEY)
                .and_then(|v| serde_json::from_value::<SessionOwner>(v.clone()).ok()),
            data.get(SESSION_AUTH_KEY)
                .and_then(|v| crate::sessions::copy::decode::<SessionAuth>(v.clone()).ok()),
        ) else {
            continue;
        };
        if owner.scheme != Scheme::Session || auth.times.check(now).is_err() {
            continue;
        }
        session_entries.push(session_entry(&owner, &auth.times, state, current));
    }
    session_entries.sort_by_key(|e| std::cmp::Reverse(e.created_at));
    entries.extend(session_entries);

    let devices = devices::Entity::find()
        .filter(devices::Column::UserId.eq(user_id))
        .filter(devices::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(devices::Column::ExpiresAt.is_null())
                .add(devices::Column::ExpiresAt.gt(now.unix_timestamp())),
        )
        .order_by_desc(devices::Column::LastSeenAt)
        .all(&state.db)
        .await?;
    for device in devices {
        let mode = DeviceMode::parse(&device.mode)
            .ok_or_else(|| ApiError::internal(format!("unknown device mode {}", device.mode)))?;
        let label = match mode {
            DeviceMode::AsWritten => "device token as written",
            DeviceMode::Hardened => "hardened device token",
            DeviceMode::Bound => "device bound to a key (DPoP)",
        };
        entries.push(ActiveSession {
            id: SessionRef::new(Scheme::Device, device.id.to_string()).encode(),
            scheme: Scheme::Device,
            label: label.to_owned(),
            user_agent: device.name.clone(),
            created_at: from_unix_seconds(device.created_at)?,
            last_seen_at: Some(from_unix_seconds(device.last_seen_at)?),
            idle_expires_at: None,
            absolute_expires_at: device.expires_at.map(from_unix_seconds).transpose()?,
            current: current.device_pk == Some(device.id),
        });
    }

    let families = refresh_families::Entity::find()
        .filter(refresh_families::Column::UserId.eq(user_id))
        .filter(refresh_families::Column::RevokedAt.is_null())
        .filter(refresh_families::Column::AbsoluteExpiresAt.gt(now.unix_timestamp()))
        .order_by_desc(refresh_families::Column::CreatedAt)
        .all(&state.db)
        .await?;
    for family in families {
        let tokens = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::FamilyId.eq(family.id.as_str()))
            .all(&state.db)
            .await?;
        let Some(active) = tokens.iter().find(|t| t.rotated_at.is_none()) else { continue };
        if active.expires_at <= now.unix_timestamp() {
            continue;
        }
        let handle = family_handle(&family.id);
        let last_refresh = tokens.iter().map(|t| t.issued_at).max().unwrap_or(family.created_at);
        entries.push(ActiveSession {
            id: SessionRef::new(Scheme::Refresh, handle.clone()).encode(),
            scheme: Scheme::Refresh,
            label: if family.dpop_jkt.is_some() {
                "refresh-token family bound to a key (DPoP)"
            } else {
                "refresh-token family"
            }
            .to_owned(),
            user_agent: family.user_agent.clone().unwrap_or_else(|| "unknown client".to_owned()),
            created_at: from_unix_seconds(family.created_at)?,
            last_seen_at: Some(from_unix_seconds(last_refresh)?),
            idle_expires_at: Some(from_unix_seconds(active.expires_at)?),
            absolute_expires_at: Some(from_unix_seconds(family.absolute_expires_at)?),
            current: current.family_handle.as_deref() == Some(handle.as_str()),
        });
    }
    Ok(entries)
}

fn session_entry(
    owner: &SessionOwner,
    times: &SessionTimes,
    state: &AppState,
    current: &Current,
) -> ActiveSession {
    // The idle expiry slides with every request, so the last request was one idle timeout
    // before it (or the login, if that is later).
    let last_seen =
        Ord::max(times.idle_expires_at - state.session_policy.idle_timeout, times.started_at);
    ActiveSession {
        id: SessionRef::new(Scheme::Session, owner.handle.clone()).encode(),
        scheme: Scheme::Session,
        label: "session-id login".to_owned(),
        user_agent: owner.user_agent.clone(),
        created_at: owner.created_at,
        last_seen_at: Some(last_seen),
        idle_expires_at: Some(times.idle_expires_at),
        absolute_expires_at: Some(times.absolute_expires_at),
        current: current.session_handle.as_deref() == Some(owner.handle.as_str()),
    }
}

/// Ends one sign-in of `user_id`; `false` when it names nothing live of theirs.
#[tracing::instrument(name = "signout.end_one", skip_all)]
pub async fn end_one(
    conn: &impl ConnectionTrait,
    store: &AnySessionStore,
    user_id: i64,
    which: &SessionRef,
    now: Timestamp,
) -> Result<bool, ApiError> {
    match which.scheme {
        Scheme::Session => {
            let deleted = store
                .end_of_user(conn, user_id, |s| {
                    s.device_pk.is_none() && s.handle.as_deref() == Some(which.handle.as_str())
                })
                .await?;
            Ok(deleted > 0)
        }
        Scheme::Device => {
            let Ok(device_pk) = which.handle.parse::<i64>() else { return Ok(false) };
            let ended = revoke_devices(
                conn,
                store,
                devices::Column::Id.eq(device_pk).and(devices::Column::UserId.eq(user_id)),
                now,
            )
            .await?;
            Ok(ended.devices > 0)
        }
        Scheme::Refresh => {
            let Some(family_id) = family_id_of(conn, user_id, &which.handle).await? else {
                return Ok(false);
            };
            let revoked = revoke_families(
                conn,
                refresh_families::Column::Id.eq(family_id),
                "signed_out",
                now,
            )
            .await?;
            Ok(revoked > 0)
        }
    }
}

/// The id of the user's live family whose handle this is.
pub async fn family_id_of(
    conn: &impl ConnectionTrait,
    user_id: i64,
    handle: &str,
) -> Result<Option<String>, DbErr> {
    let ids: Vec<String> = refresh_families::Entity::find()
        .filter(refresh_families::Column::UserId.eq(user_id))
        .filter(refresh_families::Column::RevokedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    Ok(ids.into_iter().find(|id| family_handle(id) == handle))
}

/// Ends every sign-in of `user_id` except the caller's own when `keep` names it: every server
/// session of both cookies, every device, every refresh family (and with it every access token).
/// Run it in a transaction so that all of it happens or none.
#[tracing::instrument(name = "signout.end_all", skip_all)]
pub async fn end_all(
    conn: &impl ConnectionTrait,
    store: &AnySessionStore,
    user_id: i64,
    keep: &Current,
    why: &str,
    now: Timestamp,
) -> Result<Ended, ApiError> {
    let mut devices_cond = devices::Column::UserId.eq(user_id);
    if let Some(kept) = keep.device_pk {
        devices_cond = devices_cond.and(devices::Column::Id.ne(kept));
    }
    let mut ended = revoke_devices(conn, store, devices_cond, now).await?;

    // Sessions not attached to a device that was just revoked: session-scheme sessions, and the
    // sessions of the kept device only when it is not kept.
    ended.sessions += store.end_of_user(conn, user_id, |s| ended_by_end_all(keep, s)).await?;

    let mut families_cond = refresh_families::Column::UserId.eq(user_id);
    if let Some(handle) = &keep.family_handle
        && let Some(kept) = family_id_of(conn, user_id, handle).await?
    {
        families_cond = families_cond.and(refresh_families::Column::Id.ne(kept));
    }
    ended.refresh_families = revoke_families(conn, families_cond, why, now).await?;
    Ok(ended)
}

/// Whether [`end_all`] ends session `s`: every one but the kept session and the kept device's.
fn ended_by_end_all(keep: &Current, s: &crate::sessions::StoredSession) -> bool {
    let kept_session = keep.session_handle.is_some() && s.handle == keep.session_handle;
    let kept_device = keep.device_pk.is_some() && s.device_pk == keep.device_pk;
    !kept_session && !kept_device
}

/// Once the transaction of an [`end_all`] has committed: the sessions it ended were deleted before
/// that commit, and a login that checked the old password, or a device re-attach, just before it
/// could have saved a new one since — in Redis, which the transaction does not cover, and on
/// PostgreSQL too, where an insert is not held back by another transaction's uncommitted delete.
/// Ending them again now closes that window.
pub async fn end_all_again_after_commit(
    state: &AppState,
    user_id: i64,
    keep: &Current,
) -> Result<u64, ApiError> {
    state.session_store.end_of_user(&state.db, user_id, |s| ended_by_end_all(keep, s)).await
}

/// Once a device revocation has committed: ends the sessions of the devices `condition` matches
/// that are revoked now, for the same reason as [`end_all_again_after_commit`]. A device logged in
/// again since (live once more) keeps its new session.
pub async fn end_revoked_device_sessions_again(
    state: &AppState,
    condition: SimpleExpr,
) -> Result<u64, ApiError> {
    let revoked = devices::Entity::find()
        .filter(condition)
        .filter(devices::Column::RevokedAt.is_not_null())
        .all(&state.db)
        .await?;
    end_sessions_of(&state.db, &state.session_store, &revoked).await
}

/// Ends every server session attached to one of `devices`; how many ended.
async fn end_sessions_of(
    conn: &impl ConnectionTrait,
    store: &AnySessionStore,
    devices: &[devices::Model],
) -> Result<u64, ApiError> {
    let mut by_user = std::collections::BTreeMap::<i64, Vec<i64>>::new();
    for device in devices {
        by_user.entry(device.user_id).or_default().push(device.id);
    }
    let mut ended = 0;
    for (user_id, device_pks) in by_user {
        ended += store
            .end_of_user(conn, user_id, |s| s.device_pk.is_some_and(|pk| device_pks.contains(&pk)))
            .await?;
    }
    Ok(ended)
}

/// Revokes the live devices matching `condition` and deletes every server session attached to
/// them.
pub async fn revoke_devices(
    conn: &impl ConnectionTrait,
    store: &AnySessionStore,
    condition: SimpleExpr,
    now: Timestamp,
) -> Result<Ended, ApiError> {
    let matching = devices::Entity::find().filter(condition.clone()).all(conn).await?;
    // Revoked first, then the sessions ended: a re-attach that saves its session and then reads
    // the device (`auth::device::reattach`) either sees it revoked, or saved before the sessions
    // were ended here. Outside a transaction that closes the window; inside one, the caller ends
    // them once more after its commit (`end_revoked_device_sessions_again`).
    let devices = devices::Entity::update_many()
        .col_expr(devices::Column::RevokedAt, Expr::value(now.unix_timestamp()))
        .filter(condition)
        .filter(devices::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected;
    let sessions = end_sessions_of(conn, store, &matching).await?;
    Ok(Ended { sessions, devices, refresh_families: 0 })
}

/// Revokes the live refresh families matching `condition`; the caller reloads the revoked-families
/// cache once the change is committed.
pub async fn revoke_families(
    conn: &impl ConnectionTrait,
    condition: SimpleExpr,
    why: &str,
    now: Timestamp,
) -> Result<u64, ApiError> {
    Ok(refresh_families::Entity::update_many()
        .col_expr(refresh_families::Column::RevokedAt, Expr::value(now.unix_timestamp()))
        .col_expr(refresh_families::Column::RevokedReason, Expr::value(why))
        .filter(condition)
        .filter(refresh_families::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}
