//! The article's third section: a form submitted twice must be processed once.
//!
//! Two ways, both enforced by the database rather than by anything in this process, so that two
//! server instances behind one load balancer behave as one:
//! - a **one-time form token** (the synchronizer-token pattern the article describes): issued to
//!   the user, spent in the same transaction that writes the order by a conditional update that
//!   exactly one submission can win;
//! - an **`Idempotency-Key`** header (the IETF draft): the first request with a key claims it by
//!   an insert-on-conflict, and its response is stored and replayed to every retry.

use std::time::Duration as StdDuration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    Set, TransactionTrait as _,
};
use serde::{Deserialize, Serialize};
use tokenlab_core::submit::{
    KeyDecision, KeyRecord, decide, parse_idempotency_key, validate_order,
};
use tokenlab_core::{Reason, Timestamp};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::session::SESSION_COOKIE;
use crate::auth::Caller;
use crate::clock::from_unix_seconds;
use crate::entities::{form_tokens, idempotency_keys, orders};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::secrets::{new_token, storage_hash};
use crate::slow_network;
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes =
        OpenApiRouter::new().routes(routes!(form_token)).routes(routes!(create_order, list_orders));
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormToken {
    /// Send it back once, as `form_token`, with the order it protects.
    form_token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[schema(example = "green tea")]
    item: String,
    #[schema(example = 2)]
    quantity: i64,
    /// A one-time token from `GET /api/orders/form-token`; or send an `Idempotency-Key` header.
    form_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    id: i64,
    item: String,
    quantity: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedOrder {
    order: Order,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    orders: Vec<Order>,
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
        match protection {
            Protection::FormToken(token) => {
                slow_network::hold(delay).await;
                with_form_token(&state, request, &token).await
            }
            // The delay falls after the key is claimed, so a retry meanwhile sees it in flight.
            Protection::Key(key) => with_idempotency_key(&state, request, &key, delay).await,
        }
    }))
    .await
    .map_err(ApiError::internal)?
}

enum Protection {
    FormToken(String),
    Key(String),
}

struct OrderRequest {
    user_id: i64,
    item: String,
    quantity: i64,
}

impl OrderRequest {
    fn fingerprint(&self) -> String {
        order_fingerprint(&self.item, self.quantity)
    }

    fn row(&self, now: Timestamp) -> orders::ActiveModel {
        orders::ActiveModel {
            user_id: Set(self.user_id),
            item: Set(self.item.clone()),
            quantity: Set(self.quantity),
            created_at: Set(now.unix_timestamp()),
            ..Default::default()
        }
    }
}

/// What makes two order requests "the same": the draft compares payloads, and two JSON texts with
/// the same fields in another order or spacing are the same order.
pub fn order_fingerprint(item: &str, quantity: i64) -> String {
    storage_hash(&format!("POST /api/orders\n{quantity}\n{item}"))
}

fn created(order: Order) -> Result<(StatusCode, String), ApiError> {
    let body = serde_json::to_string(&CreatedOrder { order }).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, body))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
        .into_response()
}

async fn with_form_token(
    state: &AppState,
    request: OrderRequest,
    token: &str,
) -> Result<Response, ApiError> {
    let token_hash = storage_hash(token);
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    // The order is written first, then the token is spent by an update that matches only an unused,
    // unexpired token of this user. Exactly one of any number of concurrent submissions matches;
    // the others roll back their order.
    let order = request.row(now).insert(&txn).await?;
    let spent = form_tokens::Entity::update_many()
        .col_expr(form_tokens::Column::OrderId, Expr::value(order.id))
        .filter(form_tokens::Column::TokenHash.eq(token_hash.as_str()))
        .filter(form_tokens::Column::UserId.eq(request.user_id))
        .filter(form_tokens::Column::OrderId.is_null())
        .filter(form_tokens::Column::ExpiresAt.gt(now.unix_timestamp()))
        .exec(&txn)
        .await?;
    if spent.rows_affected == 1 {
        txn.commit().await?;
        let (status, body) = created(Order::try_from(order)?)?;
        return Ok(json_response(status, body));
    }
    txn.rollback().await?;
    let token_row = form_tokens::Entity::find_by_id(token_hash).one(&state.db).await?;
    match token_row {
        Some(row) if row.user_id == request.user_id && row.order_id.is_some() => {
            let original = row.order_id.unwrap_or_default();
            Err(ApiError::refused(
                Reason::DuplicateSubmit,
                format!("this form was already submitted: it created order #{original}"),
            )
            .with_detail("original_order_id", original))
        }
        _ => Err(ApiError::refused(
            Reason::FormTokenInvalid,
            "unknown, expired or someone else's form token",
        )),
    }
}

async fn with_idempotency_key(
    state: &AppState,
    request: OrderRequest,
    key: &str,
    delay: Option<StdDuration>,
) -> Result<Response, ApiError> {
    let fingerprint = request.fingerprint();
    let claim = new_token(state.secrets.as_ref())?;
    let policy = state.submit_policy;
    // Each pass either claims the key, answers from the stored record, or removes a record that
    // stopped counting (expired) and tries again; a handful of passes settles any race.
    for _ in 0..8 {
        let now = state.clock.now();
        let claimed = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
            user_id: Set(request.user_id),
            key: Set(key.to_owned()),
            fingerprint: Set(fingerprint.clone()),
            claim: Set(claim.clone()),
            finished: Set(false),
            response_status: Set(None),
            response_body: Set(None),
            lease_until: Set((now + policy.idempotency_lease).unix_timestamp()),
            expires_at: Set((now + policy.idempotency_retention).unix_timestamp()),
        })
        .on_conflict(
            OnConflict::columns([idempotency_keys::Column::UserId, idempotency_keys::Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
        if claimed == 1 {
            slow_network::hold(delay).await;
            return process_claimed(state, &request, key, &claim).await;
        }
        let Some(record) = idempotency_keys::Entity::find_by_id((request.user_id, key.to_owned()))
            .one(&state.db)
            .await?
        else {
            continue;
        };
        let known = KeyRecord {
            fingerprint: record.fingerprint.clone(),
            finished: record.finished,
            lease_until: from_unix_seconds(record.lease_until)?,
            expires_at: from_unix_seconds(record.expires_at)?,
        };
        match decide(&known, &fingerprint, now) {
            KeyDecision::Replay => return replay(&record),
            KeyDecision::Reused => {
                return Err(ApiError::refused(
                    Reason::IdempotencyKeyReused,
                    "this Idempotency-Key was used for a different order",
                ));
            }
            KeyDecision::InFlight => {
                return Err(ApiError::refused(
                    Reason::IdempotencyKeyInUse,
                    "a request with this Idempotency-Key is still being processed",
                ));
            }
            KeyDecision::Expired => {
                idempotency_keys::Entity::delete_many()
                    .filter(idempotency_keys::Column::UserId.eq(request.user_id))
                    .filter(idempotency_keys::Column::Key.eq(key))
                    .filter(idempotency_keys::Column::ExpiresAt.lte(now.unix_timestamp()))
                    .exec(&state.db)
                    .await?;
            }
            KeyDecision::TakeOver => {
                let taken = idempotency_keys::Entity::update_many()
                    .col_expr(idempotency_keys::Column::Claim, Expr::value(claim.clone()))
                    .col_expr(
                        idempotency_keys::Column::LeaseUntil,
                        Expr::value((now + policy.idempotency_lease).unix_timestamp()),
                    )
                    .filter(idempotency_keys::Column::UserId.eq(request.user_id))
                    .filter(idempotency_keys::Column::Key.eq(key))
                    .filter(idempotency_keys::Column::Finished.eq(false))
                    .filter(idempotency_keys::Column::LeaseUntil.lte(now.unix_timestamp()))
                    .exec(&state.db)
                    .await?;
                if taken.rows_affected == 1 {
                    slow_network::hold(delay).await;
                    return process_claimed(state, &request, key, &claim).await;
                }
            }
        }
    }
    Err(ApiError::internal("idempotency key did not settle after repeated attempts"))
}

/// Writes the order and finishes the key in one transaction, but only while this request still
/// holds the claim: a request whose lease was taken over rolls back instead of adding an order.
async fn process_claimed(
    state: &AppState,
    request: &OrderRequest,
    key: &str,
    claim: &str,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let order = request.row(now).insert(&txn).await?;
    let (status, body) = created(Order::try_from(order)?)?;
    let finished = idempotency_keys::Entity::update_many()
        .col_expr(idempotency_keys::Column::Finished, Expr::value(true))
        .col_expr(idempotency_keys::Column::ResponseStatus, Expr::value(i32::from(status.as_u16())))
        .col_expr(idempotency_keys::Column::ResponseBody, Expr::value(body.clone()))
        .filter(idempotency_keys::Column::UserId.eq(request.user_id))
        .filter(idempotency_keys::Column::Key.eq(key))
        .filter(idempotency_keys::Column::Claim.eq(claim))
        .filter(idempotency_keys::Column::Finished.eq(false))
        .exec(&txn)
        .await?;
    if finished.rows_affected != 1 {
        txn.rollback().await?;
        return Err(ApiError::refused(
            Reason::IdempotencyKeyInUse,
            "another request took over this Idempotency-Key; retry to get its response",
        ));
    }
    txn.commit().await?;
    Ok(json_response(status, body))
}

fn replay(record: &idempotency_keys::Model) -> Result<Response, ApiError> {
    let status = record
        .response_status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ApiError::internal("finished idempotency record without a status"))?;
    let body = record.response_body.clone().unwrap_or_default();
    let mut response = json_response(status, body);
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
