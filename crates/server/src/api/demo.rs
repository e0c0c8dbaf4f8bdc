//! The lab's controls: the demo clock, signing-key rotation, "reset demo", "expire every server
//! session now", token-policy presets and the server-state inspector. Routed only in the demo
//! profile, so production answers 404.

use axum::extract::State;
use tokenlab_core::bearer::TokenPolicy;
use tokenlab_core::clock::AdvanceError;
use tokenlab_core::wire::{
    ChoosePolicy, ClockChange, ClockState, NewKey, PolicyChoice, PolicyPreset, ResetDone,
    RetireKey, SessionsExpired, StatelessVerdict,
};
use tokenlab_core::{Clock as _, Reason};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{
    DEMO_ONLY, JSON_BODY, PASSWORD_HASH, SIGNED_TOKEN, STATE_CHANGING, refusals,
};
use crate::error::{ApiError, ApiJson};
use crate::state::{AppState, DemoClock};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_clock, move_clock))
        .routes(routes!(rotate_key))
        .routes(routes!(retire_key))
        .routes(routes!(reset))
        .routes(routes!(expire_sessions))
        .routes(routes!(stateless_jwt))
        .routes(routes!(get_policy, choose_policy))
        .routes(routes!(super::inspector::inspect))
}

refusals!(DemoReadRefusals = DEMO_ONLY);
refusals!(DemoChangeRefusals = STATE_CHANGING, DEMO_ONLY);
refusals!(MoveClockRefusals = STATE_CHANGING, JSON_BODY, DEMO_ONLY, &[Reason::InvalidClockAdvance]);
refusals!(RetireKeyRefusals = STATE_CHANGING, JSON_BODY, DEMO_ONLY);
refusals!(ResetRefusals = STATE_CHANGING, DEMO_ONLY, PASSWORD_HASH);
refusals!(StatelessRefusals = DEMO_ONLY, SIGNED_TOKEN);
refusals!(ChoosePolicyRefusals = STATE_CHANGING, JSON_BODY, DEMO_ONLY);

fn demo_clock(state: &AppState) -> Result<&DemoClock, ApiError> {
    state.demo_clock.as_deref().ok_or_else(|| {
        ApiError::refused(Reason::NotFound, "the demo clock exists only in the demo profile")
    })
}

fn snapshot(clock: &DemoClock) -> ClockState {
    ClockState { now: clock.now(), offset_seconds: clock.offset_seconds() }
}

/// Read the demo clock.
#[utoipa::path(get, path = "/demo/clock", tag = "demo",
    responses((status = 200, body = ClockState), DemoReadRefusals))]
async fn get_clock(State(state): State<AppState>) -> Result<ApiJson<ClockState>, ApiError> {
    Ok(ApiJson(snapshot(demo_clock(&state)?)))
}

/// Move the demo clock forward, or reset it to the real time: on every instance on this database.
/// Answered once every instance has read the new offset (a quarter of a second).
#[utoipa::path(post, path = "/demo/clock", tag = "demo", request_body = ClockChange,
    responses((status = 200, body = ClockState), MoveClockRefusals))]
async fn move_clock(
    State(state): State<AppState>,
    ApiJson(change): ApiJson<ClockChange>,
) -> Result<ApiJson<ClockState>, ApiError> {
    let clock = demo_clock(&state)?;
    match (change.advance_seconds, change.reset) {
        (Some(seconds), None) => {
            crate::demo_clock::advance(&state.db, clock, seconds).await?.map_err(|e| {
                let why = match e {
                    AdvanceError::NotPositive => {
                        "advance_seconds must be positive: the clock only moves forward"
                    }
                    AdvanceError::TooLarge => "at most a year per step and ten years in all",
                };
                ApiError::refused(Reason::InvalidClockAdvance, why)
            })?;
        }
        (None, Some(true)) => crate::demo_clock::reset(&state.db, clock).await?,
        _ => {
            return Err(ApiError::refused(
                Reason::InvalidBody,
                "send either {\"advance_seconds\": N} or {\"reset\": true}",
            ));
        }
    }
    tracing::info!(offset_seconds = clock.offset_seconds(), "demo clock moved");
    crate::demo_clock::settle().await;
    Ok(ApiJson(snapshot(clock)))
}

/// Rotate the access-token signing key: a new key signs; the old one verifies until retired.
#[utoipa::path(post, path = "/demo/keys/rotate", tag = "demo",
    responses((status = 200, body = NewKey), DemoChangeRefusals))]
async fn rotate_key(State(state): State<AppState>) -> Result<ApiJson<NewKey>, ApiError> {
    demo_clock(&state)?;
    let kid = crate::keys::rotate(&state.db, state.secrets.as_ref(), state.clock.now()).await?;
    state.keys.reload(&state.db).await?;
    Ok(ApiJson(NewKey { kid }))
}

/// Retire a signing key: tokens it signed are refused from now on. A new key is created if the
/// retired one was the last.
///
/// A `kid` that names no active key is `not_found`.
#[utoipa::path(post, path = "/demo/keys/retire", tag = "demo", request_body = RetireKey,
    responses((status = 204, description = "Retired"), RetireKeyRefusals))]
async fn retire_key(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RetireKey>,
) -> Result<axum::http::StatusCode, ApiError> {
    demo_clock(&state)?;
    let now = state.clock.now();
    if !crate::keys::retire(&state.db, &body.kid, now).await? {
        return Err(ApiError::refused(Reason::NotFound, "no active signing key with this kid"));
    }
    crate::keys::ensure(&state.db, state.secrets.as_ref(), now).await?;
    state.keys.reload(&state.db).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Reset the demo: every session, device, refresh family, form token, idempotency key, order,
/// login-throttle count and registered account goes; the demo account gets its password back; the
/// clock returns to the real time and the token policy to the server's own. Every signing key kept
/// in the database is retired and a new one made, so that no access token outlives the reset
/// (`removed.signing_keys`): its family is gone, and with it what would have let it be revoked.
#[utoipa::path(post, path = "/demo/reset", tag = "demo",
    responses((status = 200, body = ResetDone), ResetRefusals))]
async fn reset(State(state): State<AppState>) -> Result<ApiJson<ResetDone>, ApiError> {
    use sea_orm::{ColumnTrait as _, ConnectionTrait as _, EntityTrait as _, QueryFilter as _};

    use crate::entities::{
        demo_settings, devices, form_tokens, idempotency_keys, orders, refresh_families,
        refresh_tokens, users,
    };
    let clock = demo_clock(&state)?;
    let password_hash = state.hasher.hash(state.settings.demo_password.clone()).await?;
    let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
    let mut removed = std::collections::BTreeMap::<&'static str, u64>::new();
    // Children before parents, so foreign keys hold at every step.
    removed.insert(
        "refresh_tokens",
        refresh_tokens::Entity::delete_many().exec(&txn).await?.rows_affected,
    );
    removed.insert(
        "refresh_families",
        refresh_families::Entity::delete_many().exec(&txn).await?.rows_affected,
    );
    removed
        .insert("form_tokens", form_tokens::Entity::delete_many().exec(&txn).await?.rows_affected);
    removed.insert(
        "idempotency_keys",
        idempotency_keys::Entity::delete_many().exec(&txn).await?.rows_affected,
    );
    removed.insert("orders", orders::Entity::delete_many().exec(&txn).await?.rows_affected);
    removed.insert("devices", devices::Entity::delete_many().exec(&txn).await?.rows_affected);
    removed.insert("sessions", state.session_store.end_everyone(&txn).await?);
    removed.insert(
        "login_throttle",
        txn.execute_unprepared("DELETE FROM login_throttle").await?.rows_affected(),
    );
    removed.insert(
        "demo_counters",
        txn.execute_unprepared("DELETE FROM demo_counters").await?.rows_affected(),
    );
    removed.insert(
        "demo_settings",
        demo_settings::Entity::delete_many().exec(&txn).await?.rows_affected,
    );
    removed.insert(
        "users",
        users::Entity::delete_many()
            .filter(users::Column::Username.ne(crate::app::DEMO_USERNAME))
            .exec(&txn)
            .await?
            .rows_affected,
    );
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, sea_orm::sea_query::Expr::value(password_hash))
        .filter(users::Column::Username.eq(crate::app::DEMO_USERNAME))
        .exec(&txn)
        .await?;
    // An access token is refused when its login is revoked, and the logins were just deleted, not
    // revoked: the keys that signed the tokens go instead. Keys from files (--keys-dir) are the
    // deployment's own and stay; the reset cannot end those tokens.
    let keys_in_database = matches!(state.keys, crate::keys::KeyStore::Database(_));
    if keys_in_database {
        let retired = crate::keys::retire_every_signing_key(&txn, state.clock.now()).await?;
        removed.insert("signing_keys", retired);
        // The next key in the same transaction: no instance ever reads a state without one.
        crate::keys::ensure(&txn, state.secrets.as_ref(), state.clock.now()).await?;
    }
    crate::demo_clock::reset(&txn, clock).await?;
    txn.commit().await?;
    if keys_in_database {
        state.keys.reload(&state.db).await?;
    }
    crate::demo_clock::settle().await;
    tracing::info!(?removed, "demo reset");
    Ok(ApiJson(ResetDone {
        removed: removed.into_iter().map(|(table, rows)| (table.to_owned(), rows)).collect(),
        clock: snapshot(clock),
        token_policy: state.token_policy.name.to_owned(),
    }))
}

/// Expire every server session now, as if each had timed out: the session-id scheme must log in
/// again, the device scheme re-attaches from the database, access tokens are not affected.
#[utoipa::path(post, path = "/demo/sessions/expire", tag = "demo",
    responses((status = 200, body = SessionsExpired), DemoChangeRefusals))]
async fn expire_sessions(
    State(state): State<AppState>,
) -> Result<ApiJson<SessionsExpired>, ApiError> {
    demo_clock(&state)?;
    let expired = state.session_store.end_everyone(&state.db).await?;
    tracing::info!(expired, "demo: every server session expired");
    Ok(ApiJson(SessionsExpired { expired }))
}

/// For contrast: what a resource server *without* a revocation check answers — signature and
/// expiry only, as most JWT setups do. After a sign-out everywhere, `/api/jwt/me` refuses the
/// token (`token_revoked`); this keeps accepting it until `exp`.
#[utoipa::path(get, path = "/demo/stateless-jwt", tag = "demo", security(("bearer" = [])),
    responses((status = 200, body = StatelessVerdict), StatelessRefusals))]
async fn stateless_jwt(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
) -> Result<ApiJson<StatelessVerdict>, ApiError> {
    demo_clock(&state)?;
    let target = crate::auth::dpop::Target { method: &method, path: uri.path() };
    let claims = crate::auth::bearer::verify_signed_claims(&state, &headers, target).await?;
    Ok(ApiJson(StatelessVerdict { accepted: true, exp: claims.exp }))
}

async fn policy_choice(state: &AppState) -> Result<PolicyChoice, ApiError> {
    Ok(PolicyChoice {
        current: crate::policy::current(state).await?.into(),
        presets: TokenPolicy::PRESETS.into_iter().map(PolicyPreset::from).collect(),
    })
}

/// The token-policy preset in force, and every preset the lab can switch to.
#[utoipa::path(get, path = "/demo/policy", tag = "demo",
    responses((status = 200, body = PolicyChoice), DemoReadRefusals))]
async fn get_policy(State(state): State<AppState>) -> Result<ApiJson<PolicyChoice>, ApiError> {
    demo_clock(&state)?;
    Ok(ApiJson(policy_choice(&state).await?))
}

/// Switch the lifetimes of tokens issued from now on to another preset.
#[utoipa::path(put, path = "/demo/policy", tag = "demo", request_body = ChoosePolicy,
    responses((status = 200, body = PolicyChoice), ChoosePolicyRefusals))]
async fn choose_policy(
    State(state): State<AppState>,
    ApiJson(choice): ApiJson<ChoosePolicy>,
) -> Result<ApiJson<PolicyChoice>, ApiError> {
    demo_clock(&state)?;
    let policy = TokenPolicy::by_name(&choice.name).ok_or_else(|| {
        let names: Vec<&str> = TokenPolicy::PRESETS.iter().map(|p| p.name).collect();
        ApiError::refused(Reason::InvalidBody, format!("name must be one of {}", names.join(", ")))
    })?;
    crate::policy::choose(&state, policy).await?;
    tracing::info!(policy = policy.name, "demo token policy switched");
    Ok(ApiJson(policy_choice(&state).await?))
}
