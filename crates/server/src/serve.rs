//! Connection hygiene: what a client that never finishes cannot hold.
//!
//! `axum::serve` offers no header timeout and no connection cap, so tokenlab runs hyper's HTTP/1.1
//! connections itself (hyper-util's tokio glue and graceful shutdown), with each limit a hyper or
//! tokio setting:
//! - request headers not complete within `--header-timeout`: hyper closes the connection (a
//!   kept-alive connection waiting for its next request is waiting for headers too, so an idle
//!   connection is closed as well and cannot keep a slot forever);
//! - at most `--max-connections` connections are served at once: the accept loop takes a
//!   semaphore permit before accepting, so further clients wait in the kernel's backlog;
//! - a request body not received within `--body-timeout` answers 408 ([`read_body_within`]);
//! - a handler that has not answered within `--handler-timeout` answers 503 (tower-http's
//!   `TimeoutLayer`, in `app::router`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokenlab_core::Reason;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Accepts and serves connections until `shutdown` completes, then lets the requests in flight
/// finish (idle connections are closed at once).
pub async fn serve<S, B>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = axum::http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data: Send, Error: Into<axum::BoxError>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    backoff_after_accept_error(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON answers go out at once rather than waiting for Nagle's timer.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%remote, "cannot set TCP_NODELAY: {err}");
        }
        // What `Router::into_make_service_with_connect_info` does, without needing a `Router` on
        // the outside: the client's address for axum's `ConnectInfo` extractor.
        let service = ServiceBuilder::new()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            })
            .service(app.clone());
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                // Clients hang up, time out and send garbage; none of that is the server's fault.
                tracing::debug!(%remote, "connection ended: {err}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A failed accept is usually one client's trouble (it hung up first), and the next accept
/// works; when the process is out of file descriptors, retrying at once would spin.
async fn backoff_after_accept_error(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!("accepting a connection failed: {err}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The largest request body any handler accepts: axum's default limit, which the extractors
/// enforce again.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What [`read_body_within`] needs to know.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl<S> tower::Layer<S> for BodyLimits {
    type Service = ReadBodyWithin<S>;

    fn layer(&self, inner: S) -> ReadBodyWithin<S> {
        ReadBodyWithin { limits: *self, inner }
    }
}

/// The service of the [`BodyLimits`] layer: [`read_body_within`] before the inner service.
#[derive(Debug, Clone)]
pub struct ReadBodyWithin<S> {
    limits: BodyLimits,
    inner: S,
}

impl<S> tower::Service<Request> for ReadBodyWithin<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Most API calls are GETs without a body (no `Content-Length`, or 0, and no chunking):
        // there is nothing to wait for, so they go straight on, without the timer, the copy into
        // a new body, or the clone of the inner service that waiting would need.
        if axum::body::HttpBody::is_end_stream(request.body()) {
            return Box::pin(self.inner.call(request));
        }
        // The service that was made ready is the one that serves this request; a clone stays.
        let inner = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, inner);
        Box::pin(read_body_within(self.limits, request, ready))
    }
}

/// Reads the whole request body before the handler runs, and answers 408 `request_timeout` when
/// it has not arrived within the body timeout — however slowly it is dripped — or 413 when it is
/// larger than the handlers accept. The handler then reads a body that is already here.
pub async fn read_body_within<S>(
    limits: BodyLimits,
    request: Request,
    mut next: S,
) -> Result<Response, Infallible>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, limits.max_bytes);
    let bytes = match tokio::time::timeout(limits.timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) => {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            return Ok(if too_large {
                ApiError::refused(Reason::PayloadTooLarge, "the request body is too large")
                    .into_response()
            } else {
                ApiError::refused(Reason::BadRequest, format!("the request body broke off: {err}"))
                    .into_response()
            });
        }
        Err(_elapsed) => {
            let message =
                format!("the request body did not arrive within {} s", limits.timeout.as_secs());
            let mut response = ApiError::refused(Reason::RequestTimeout, message).into_response();
            // The rest of the body may still be on its way; this connection cannot be reused.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(response);
        }
    };
    next.call(Request::from_parts(parts, Body::from(bytes))).await
}
