//! The article's third section: a form submitted twice must be processed once.
//!
//! Two ways, both enforced by the database rather than by anything in this process (the engine is
//! `exactly_once`), so that two server instances behind one load balancer behave as one:
//! - a **one-time form token** (the synchronizer-token pattern the article describes): issued to
//!   the user, spent in the same transaction that writes the order by a conditional update that
//!   exactly one submission can win;
//! - an **`Idempotency-Key`** header (the IETF draft): the first request with a key claims it by
//!   an insert-on-conflict, and its response is stored and replayed to every retry.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    Set,
};
use tokenlab_core::Reason;
use tokenlab_core::submit::{parse_idempotency_key, validate_order};
use tokenlab_core::wire::{CreatedOrder, FormToken, NewOrder, Order, OrderList, schemas};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{CALLER, JSON_BODY, STATE_CHANGING, refusals};
use crate::auth::Caller;
use crate::auth::session::SESSION_COOKIE;
use crate::clock::from_unix_seconds;
use crate::entities::{form_tokens, orders};
use crate::error::{ApiError, ApiJson};
pub use crate::exactly_once::order_fingerprint;
use crate::exactly_once::{self, OrderRequest, Protection};
use crate::secrets::{new_token, storage_hash};
use crate::slow_network;
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes =
        OpenApiRouter::new().routes(routes!(form_token)).routes(routes!(create_order, list_orders));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

impl TryFrom<orders::Model> for Order {
    type Error = ApiError;

    fn try_from(row: orders::Model) -> Result<Self, ApiError> {
        Ok(Order {
            id: row.id,
            item: row.item,
            quantity: row.quantity,
            created_at: from_unix_seconds(row.created_at)?,
        })
    }
}

refusals!(SignedInRefusals = CALLER);
refusals!(
    CreateOrderRefusals = STATE_CHANGING,
    CALLER,
    JSON_BODY,
    &[
        Reason::InvalidOrder,
        Reason::IdempotencyKeyMissing,
        Reason::InvalidIdempotencyKey,
        Reason::FormTokenInvalid,
        Reason::DuplicateSubmit,
        Reason::IdempotencyKeyInUse,
        Reason::IdempotencyKeyReused,
    ],
);

/// The headers `POST /api/orders` reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Read from the `HeaderMap`; this type only describes them.
struct OrderHeaders {
    /// Instead of `form_token` (never both): retries with the same key get the first response.
    #[param(rename = "Idempotency-Key", schema_with = schemas::idempotency_key)]
    idempotency_key: Option<String>,
    /// Demo profile: hold the request this many milliseconds before processing it (a slow
    /// network), at most ten seconds; longer asks are held ten seconds. A value that is not a
    /// whole number of milliseconds is ignored, and outside the demo profile the header is.
    #[param(rename = "X-Demo-Delay-Ms", example = "2000")]
    demo_delay_ms: Option<String>,
}

/// Issue a one-time form token for the caller.
#[utoipa::path(get, path = "/orders/form-token", tag = "orders",
    security(("bearer" = []), ("device_id" = [], "device_token" = []), ("session_cookie" = [])),
    responses((status = 200, body = FormToken), SignedInRefusals))]
async fn form_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<FormToken>, ApiError> {
    let token = new_token(state.secrets.as_ref())?;
    let now = state.clock.now();
    let expires_at = now + state.submit_policy.form_token_lifetime;
    form_tokens::ActiveModel {
        token_hash: Set(storage_hash(&token)),
        user_id: Set(caller.user_id),
        order_id: Set(None),
        created_at: Set(now.unix_timestamp()),
        expires_at: Set(expires_at.unix_timestamp()),
    }
    .insert(&state.db)
    .await?;
    Ok(ApiJson(FormToken { form_token: token, expires_at }))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders",
    security(("bearer" = []), ("device_id" = [], "device_token" = []), ("session_cookie" = [])),
    responses((status = 200, body = OrderList), SignedInRefusals))]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<OrderList>, ApiError> {
    let rows = orders::Entity::find()
        .filter(orders::Column::UserId.eq(caller.user_id))
        .order_by_desc(orders::Column::Id)
        .all(&state.db)
        .await?;
    let orders = rows.into_iter().map(Order::try_from).collect::<Result<_, _>>()?;
    Ok(ApiJson(OrderList { orders }))
}

/// Place an order, exactly once: protect it with a one-time `form_token` or an `Idempotency-Key`.
///
/// Exactly one of the two: neither is `idempotency_key_missing`, both `invalid_body`. A retry with
/// the same `Idempotency-Key` gets the first response again; a `duplicate_submit` names the order
/// the spent form token created (`original_order_id`).
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = NewOrder, params(OrderHeaders),
    security(("bearer" = []), ("device_id" = [], "device_token" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "Created (replays of it carry `Idempotent-Replayed: true`)", body = CreatedOrder),
        CreateOrderRefusals,
    ))]
async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(order): ApiJson<NewOrder>,
) -> Result<Response, ApiError> {
    validate_order(&order.item, order.quantity)?;
    let key = headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{0}"));
    let protection = match (key, order.form_token) {
        (Some(_), Some(_)) => {
            return Err(ApiError::refused(
                Reason::InvalidBody,
                "send either a form_token or an Idempotency-Key, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::refused(
                Reason::IdempotencyKeyMissing,
                "send an Idempotency-Key header or a form_token from GET /api/orders/form-token",
            ));
        }
        (None, Some(token)) => Protection::FormToken(token),
        (Some(raw), None) => Protection::Key(parse_idempotency_key(raw)?),
    };
    let delay = slow_network::requested(&state, &headers);
    let request =
        OrderRequest { user_id: caller.user_id, item: order.item, quantity: order.quantity };
    // Processed on a task of its own: a client that gives up (a timeout, a closed tab) must not
    // cancel a submission half-way. The retry it sends will find the outcome.
    tokio::spawn(crate::queries::counted(async move {
        exactly_once::submit(&state, request, protection, delay, created).await
    }))
    .await
    .map_err(ApiError::internal)?
}

/// The response to a new order, as it is sent and, under an Idempotency-Key, stored for replay.
fn created(order: orders::Model) -> Result<(StatusCode, String), ApiError> {
    let order = Order::try_from(order)?;
    let body = serde_json::to_string(&CreatedOrder { order }).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, body))
}
