//! Duplicate-submit protection: `/api/orders*`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FormToken {
    /// Send it back once, as `form_token`, with the order it protects.
    pub form_token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::order_item))]
    pub item: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::order_quantity))]
    #[serde(deserialize_with = "crate::wire::numbers::whole_number")]
    pub quantity: i64,
    /// A one-time token from `GET /api/orders/form-token`; or send an `Idempotency-Key` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: i64,
    pub item: String,
    pub quantity: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedOrder {
    pub order: Order,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderList {
    pub orders: Vec<Order>,
}
