//! Request extractors shared by handlers.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::{Form, Json};
use serde::de::DeserializeOwned;
use tokenlab_core::Reason;

use crate::error::ApiError;

/// A body sent form-encoded (as RFC 6749 and RFC 7009 require) or as JSON (which tokenlab also
/// accepts), chosen by `Content-Type`; anything else, or a body that does not parse, is refused as
/// `invalid_request`.
#[derive(Debug)]
pub struct JsonOrForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let invalid = |why: String| ApiError::refused(Reason::InvalidRequest, why);
        if content_type.starts_with("application/json") {
            let Json(value) = Json::<T>::from_request(request, state)
                .await
                .map_err(|e| invalid(e.body_text()))?;
            Ok(Self(value))
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            let Form(value) = Form::<T>::from_request(request, state)
                .await
                .map_err(|e| invalid(e.body_text()))?;
            Ok(Self(value))
        } else {
            Err(invalid("send application/x-www-form-urlencoded (or JSON)".to_owned()))
        }
    }
}
