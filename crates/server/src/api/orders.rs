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
use tokenlab_core::wire::{CreatedOrder, FormToken, NewOrder, Order, OrderList};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::auth::session::SESSION_COOKIE;
use crate::clock::from_unix_seconds;
use crate::entities::{form_tokens, orders};
use crate::error::{ApiError, ApiJson, ErrorBody};
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

/// Issue a one-time form token for the caller.
#[utoipa::path(get, path = "/orders/form-token", tag = "orders",
    responses((status = 200, body = FormToken),
              (status = 401, description = "`not_logged_in`, `session_expired`", body = ErrorBody)))]
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
    responses((status = 200, body = OrderList),
              (status = 401, description = "`not_logged_in`, `session_expired`", body = ErrorBody)))]
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
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = NewOrder,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Instead of `form_token`: retries with the same key get the first response"),
        ("X-Demo-Delay-Ms" = Option<u64>, Header, description = "Demo profile: hold the request this long before processing (slow network), at most 10000"),
    ),
    responses(
        (status = 201, description = "Created (replays of it carry `Idempotent-Replayed: true`)", body = CreatedOrder),
        (status = 400, description = "`idempotency_key_missing`, `invalid_idempotency_key`, `invalid_json`", body = ErrorBody),
        (status = 401, description = "`not_logged_in`, `session_expired`", body = ErrorBody),
        (status = 409, description = "`duplicate_submit` with `original_order_id`, or `idempotency_key_in_use`", body = ErrorBody),
        (status = 422, description = "`form_token_invalid`, `idempotency_key_reused`, `invalid_order`, `invalid_body`", body = ErrorBody),
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
