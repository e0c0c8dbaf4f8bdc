//! The one error type of the HTTP API.
//!
//! Every refusal is `{reason, message}` with the status that [`Reason`] assigns, so a client can
//! branch on `reason` without parsing prose. A server fault is logged with its cause and reaches the
//! client only as `internal`: nothing about tables, queries or stack frames leaks.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokenlab_core::Reason;
use tokenlab_core::account::RuleViolation;
// The bodies themselves are part of the wire contract the browser compiles too.
pub use tokenlab_core::wire::{ErrorBody, ErrorDetails};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{reason}: {message}")]
    Refused {
        reason: Reason,
        message: String,
        /// Sent with the response: `Retry-After` with `rate_limited`, `WWW-Authenticate` with a
        /// refused bearer token.
        headers: Vec<(HeaderName, HeaderValue)>,
        /// Facts the client needs to act, beside `reason` (e.g. `original_order_id`).
        details: ErrorDetails,
    },
    /// A fault of the server: its cause, with the context each step added on the way up
    /// (`anyhow::Context`). Logged whole, never sent.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn refused(reason: Reason, message: impl Into<String>) -> Self {
        Self::Refused {
            reason,
            message: message.into(),
            headers: Vec::new(),
            details: ErrorDetails::default(),
        }
    }

    pub fn with_retry_after(self, seconds: i64) -> Self {
        self.with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let Self::Refused { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }

    /// Sets the facts the client needs to act on the refusal (they travel beside `reason`).
    pub fn with_details(mut self, facts: ErrorDetails) -> Self {
        if let Self::Refused { details, .. } = &mut self {
            *details = facts;
        }
        self
    }

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(anyhow::Error::from_boxed(err.into()))
    }

    pub fn reason(&self) -> Reason {
        match self {
            Self::Refused { reason, .. } => *reason,
            Self::Internal(_) => Reason::Internal,
        }
    }
}

/// Says what a request was doing when it failed: `.context("re-attaching the device")?` on a
/// `Result` whose error becomes an [`ApiError`]. A server fault gains the context in its chain
/// (logged, never sent); a refusal passes through unchanged.
pub trait Context<T> {
    fn context(self, doing: &'static str) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> Context<T> for Result<T, E> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|err| match err.into() {
            ApiError::Internal(cause) => ApiError::Internal(cause.context(doing)),
            refused => refused,
        })
    }
}

impl From<RuleViolation> for ApiError {
    fn from(v: RuleViolation) -> Self {
        Self::refused(v.reason, v.message)
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(err: tower_sessions::session::Error) -> Self {
        Self::internal(err)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(anyhow::Error::new(err))
    }
}

/// `.context("loading the device")?` on any fallible step of a request turns its error into an
/// internal one that says what was being done.
impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let reason = match &rejection {
            JsonRejection::JsonSyntaxError(_) => Reason::InvalidJson,
            JsonRejection::MissingJsonContentType(_) => Reason::UnsupportedMediaType,
            JsonRejection::JsonDataError(_) => Reason::InvalidBody,
            _ => Reason::InvalidJson,
        };
        // serde's message names the offending field and position, which is what a client needs;
        // it never contains server internals.
        Self::refused(reason, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = self.reason();
        let (message, headers, details) = match self {
            Self::Refused { message, headers, details, .. } => (message, headers, details),
            Self::Internal(source) => {
                // `{:#}` prints every context and cause in the chain, outermost first; the request's
                // span (method, path, request id) is attached by the tracing layer.
                tracing::error!(error = format!("{source:#}"), "request failed");
                (reason.explanation().to_owned(), Vec::new(), ErrorDetails::default())
            }
        };
        let status =
            StatusCode::from_u16(reason.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorBody { reason, message, details })).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// `axum::Json`, but a malformed body answers with [`ApiError`] like every other refusal.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_joins_a_faults_chain_and_leaves_refusals_alone() {
        let fault: Result<(), sea_orm::DbErr> = Err(sea_orm::DbErr::Custom("disk full".into()));
        let fault = fault.context("writing the order").context("placing an order");
        let Err(ApiError::Internal(chain)) = fault else { panic!("a fault stays internal") };
        assert_eq!(
            format!("{chain:#}"),
            "placing an order: writing the order: Custom Error: disk full"
        );

        let refused: Result<(), ApiError> =
            Err(ApiError::refused(Reason::NotFound, "nothing here"));
        let Err(ApiError::Refused { reason, message, .. }) = refused.context("loading a thing")
        else {
            panic!("a refusal stays a refusal")
        };
        assert_eq!((reason, message.as_str()), (Reason::NotFound, "nothing here"));
    }
}
