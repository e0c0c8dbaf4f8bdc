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
            Self::Internal(cause) if database_unavailable(cause) => Reason::DatabaseUnavailable,
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
        match err {
            tower_sessions::session::Error::Store(err) => err.into(),
            other => Self::internal(other),
        }
    }
}

/// A store that could not be reached is the client's to retry (503, and the log says why);
/// anything else a store says is a fault.
impl From<tower_sessions::session_store::Error> for ApiError {
    fn from(err: tower_sessions::session_store::Error) -> Self {
        if let tower_sessions::session_store::Error::Backend(message) = &err
            && let Some(reason) = crate::sessions::unavailable_reason(message)
        {
            tracing::warn!("{message}");
            return Self::refused(reason, "the session store does not answer; retry in a moment");
        }
        Self::internal(err)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(anyhow::Error::new(err))
    }
}

/// Whether a fault's chain holds a database error that says the database could not be reached or
/// used now ([`crate::db::unavailable`]): the request is answered 503 `database_unavailable`, not
/// 500, whatever context the error gathered on its way up.
fn database_unavailable(cause: &anyhow::Error) -> bool {
    cause.chain().any(|e| e.downcast_ref::<sea_orm::DbErr>().is_some_and(crate::db::unavailable))
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
            JsonRejection::BytesRejection(bytes)
                if bytes.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Reason::PayloadTooLarge
            }
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
                let cause = format!("{source:#}");
                if reason == Reason::DatabaseUnavailable {
                    tracing::warn!(error = cause, "database unavailable");
                } else {
                    tracing::error!(error = cause, "request failed");
                }
                (reason.explanation().to_owned(), Vec::new(), ErrorDetails::default())
            }
        };
        let status =
            StatusCode::from_u16(reason.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorBody { reason, message, details })).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        if reason == Reason::DatabaseUnavailable {
            // A pool that was exhausted or a connection that was lost is usually fine a second
            // later; a client that honours Retry-After does not hammer it meanwhile.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The one error shape, enforced where nothing else did: an error response under `/api` that is
/// not already `{reason, message}` JSON — axum's own rejections (a path parameter that does not
/// parse, a body over the limit), or any layer's — is rewritten into it, with the reason its
/// status implies and the original text as the message. Handlers never rely on this.
///
/// An [`Around`](crate::middleware::Around) middleware: it only looks at the response.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonErrors;

impl crate::middleware::Around for JsonErrors {
    fn around<S: crate::middleware::NextService>(
        &self,
        request: axum::extract::Request,
        next: crate::middleware::Next<'_, S>,
    ) -> crate::middleware::Answer {
        let answer = next.run(request);
        Box::pin(async move { json_errors(answer.await).await })
    }
}

/// [`JsonErrors`]' rewrite of one response.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let reason = match status {
        StatusCode::NOT_FOUND => Reason::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Reason::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => Reason::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => Reason::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Reason::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => Reason::RateLimited,
        // Handlers answer their own 503s in JSON; a plain one is the handler deadline's.
        StatusCode::SERVICE_UNAVAILABLE => Reason::DeadlineExceeded,
        s if s.is_client_error() => Reason::BadRequest,
        _ => Reason::Internal,
    };
    let (parts, body) = response.into_parts();
    // Rejection texts are short and say what could not be read; a server fault says nothing.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = match reason {
        Reason::Internal => reason.explanation().to_owned(),
        _ => String::from_utf8_lossy(&text).trim().to_owned(),
    };
    let message = if message.is_empty() { reason.explanation().to_owned() } else { message };
    let mut rewritten = ApiError::refused(reason, message).into_response();
    *rewritten.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
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

#[cfg(test)]
mod shape_tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::Service as _;

    use super::*;

    /// What axum and tower layers answer on their own, and what `json_errors` makes of it.
    #[tokio::test]
    async fn plain_error_responses_get_the_one_shape() {
        let cases = [
            (StatusCode::BAD_REQUEST, "Invalid URL: cannot parse", Reason::BadRequest, true),
            (StatusCode::REQUEST_TIMEOUT, "", Reason::RequestTimeout, false),
            (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded", Reason::PayloadTooLarge, true),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "nope", Reason::UnsupportedMediaType, true),
            (StatusCode::INTERNAL_SERVER_ERROR, "stack trace here", Reason::Internal, false),
            (StatusCode::SERVICE_UNAVAILABLE, "", Reason::DeadlineExceeded, false),
        ];
        for (status, text, reason, keeps_text) in cases {
            let mut app = Router::new()
                .route("/x", get(move || async move { (status, text) }))
                .layer(crate::middleware::AroundLayer(JsonErrors))
                .into_service::<Body>();
            let request = Request::get("/x").body(Body::empty()).unwrap_or_default();
            let Ok(response) = app.call(request).await;
            assert_eq!(response.status(), status);
            let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            assert_eq!(body["reason"], reason.code(), "{status}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            if keeps_text {
                assert_eq!(message, text);
            } else {
                assert_eq!(message, reason.explanation(), "{status}: nothing internal leaks");
            }
        }
    }
}
