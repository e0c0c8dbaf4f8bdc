//! The demo clock. Routed only in the demo profile, so production answers 404.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tokenlab_core::clock::AdvanceError;
use tokenlab_core::{Clock as _, Reason, Timestamp};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::{AppState, DemoClock};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_clock, move_clock))
        .routes(routes!(rotate_key))
        .routes(routes!(retire_key))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockState {
    /// The server's "now", which every expiry is measured against.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    now: Timestamp,
    /// How far the demo clock is ahead of the real time.
    offset_seconds: i64,
}

/// Exactly one of the two fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    /// Seconds to move forward: 1 up to a year.
    #[schema(example = 1860)]
    advance_seconds: Option<i64>,
    /// `true` returns to the real time.
    reset: Option<bool>,
}

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
    responses((status = 200, body = ClockState), (status = 404, description = "`not_found` outside the demo profile", body = ErrorBody)))]
async fn get_clock(State(state): State<AppState>) -> Result<ApiJson<ClockState>, ApiError> {
    Ok(ApiJson(snapshot(demo_clock(&state)?)))
}

/// Move the demo clock forward, or reset it to the real time.
#[utoipa::path(post, path = "/demo/clock", tag = "demo", request_body = ClockChange,
    responses(
        (status = 200, body = ClockState),
        (status = 422, description = "`invalid_clock_advance`, `invalid_body`", body = ErrorBody),
        (status = 404, description = "`not_found` outside the demo profile", body = ErrorBody),
    ))]
async fn move_clock(
    State(state): State<AppState>,
    ApiJson(change): ApiJson<ClockChange>,
) -> Result<ApiJson<ClockState>, ApiError> {
    let clock = demo_clock(&state)?;
    match (change.advance_seconds, change.reset) {
        (Some(seconds), None) => {
            clock.advance(seconds).map_err(|e| {
                let why = match e {
                    AdvanceError::NotPositive => {
                        "advance_seconds must be positive: the clock only moves forward"
                    }
                    AdvanceError::TooLarge => "at most a year per step and ten years in all",
                };
                ApiError::refused(Reason::InvalidClockAdvance, why)
            })?;
        }
        (None, Some(true)) => clock.reset(),
        _ => {
            return Err(ApiError::refused(
                Reason::InvalidBody,
                "send either {\"advance_seconds\": N} or {\"reset\": true}",
            ));
        }
    }
    tracing::info!(offset_seconds = clock.offset_seconds(), "demo clock moved");
    Ok(ApiJson(snapshot(clock)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// The key that signs from now on.
    kid: String,
}

/// Rotate the access-token signing key: a new key signs; the old one verifies until retired.
#[utoipa::path(post, path = "/demo/keys/rotate", tag = "demo",
    responses((status = 200, body = NewKey), (status = 404, description = "`not_found` outside the demo profile", body = ErrorBody)))]
async fn rotate_key(State(state): State<AppState>) -> Result<ApiJson<NewKey>, ApiError> {
    demo_clock(&state)?;
    let kid = crate::keys::rotate(&state.db, state.secrets.as_ref(), state.clock.now()).await?;
    Ok(ApiJson(NewKey { kid }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireKey {
    kid: String,
}

/// Retire a signing key: tokens it signed are refused from now on. A new key is created if the
/// retired one was the last.
#[utoipa::path(post, path = "/demo/keys/retire", tag = "demo", request_body = RetireKey,
    responses((status = 204, description = "Retired"),
              (status = 404, description = "`not_found`: no such active key, or outside the demo profile", body = ErrorBody)))]
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
    Ok(axum::http::StatusCode::NO_CONTENT)
}
