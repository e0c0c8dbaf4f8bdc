//! Exactly-once order submission (article §3): one-time form tokens spent in the order's own
//! transaction, and `Idempotency-Key`s claimed by insert-on-conflict, finished in the order's
//! transaction only while the claim is still held, and replayed byte for byte. The rules of what a
//! stored key means for a new request are `tokenlab_core::submit::decide`; this module applies them
//! to rows. `api/orders.rs` is the HTTP side.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set,
    TransactionTrait as _,
};
use tokenlab_core::submit::{KeyDecision, KeyRecord, decide};
use tokenlab_core::{Reason, Timestamp};

use crate::clock::from_unix_seconds;
use crate::entities::{form_tokens, idempotency_keys, orders};
use crate::error::{ApiError, Context as _, ErrorDetails};
use crate::secrets::{new_token, storage_hash};
use crate::slow_network;
use crate::state::AppState;

/// Renders a new order as the response the client gets (and, under a key, every retry gets).
pub type Render = fn(orders::Model) -> Result<(StatusCode, String), ApiError>;

/// What makes a submission exactly-once.
pub enum Protection {
    FormToken(String),
    Key(String),
}

/// An order to write once.
pub struct OrderRequest {
    pub user_id: i64,
    pub item: String,
    pub quantity: i64,
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

/// Writes `request` once, however many times it is submitted, concurrently or later.
#[tracing::instrument(name = "orders.submit", skip_all)]
pub async fn submit(
    state: &AppState,
    request: OrderRequest,
    protection: Protection,
    delay: Option<Duration>,
    render: Render,
) -> Result<Response, ApiError> {
    match protection {
        Protection::FormToken(token) => {
            slow_network::hold(delay).await;
            with_form_token(state, request, &token, render)
                .await
                .context("placing an order with a form token")
        }
        // The delay falls after the key is claimed, so a retry meanwhile sees it in flight.
        Protection::Key(key) => with_idempotency_key(state, request, &key, delay, render)
            .await
            .context("placing an order with an Idempotency-Key"),
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
        .into_response()
}

async fn with_form_token(
    state: &AppState,
    request: OrderRequest,
    token: &str,
    render: Render,
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
        let (status, body) = render(order)?;
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
            .with_details(ErrorDetails { original_order_id: Some(original) }))
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
    delay: Option<Duration>,
    render: Render,
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
            return process_claimed(state, &request, key, &claim, render).await;
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
                    return process_claimed(state, &request, key, &claim, render).await;
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
    render: Render,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let order = request.row(now).insert(&txn).await?;
    let (status, body) = render(order)?;
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
