//! Request guards shared by every scheme: the cross-site check and the client's address.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};
use sea_orm::DatabaseConnection;
use tokenlab_core::Reason;
use tokenlab_core::request::{client_ip, is_cross_site};

use crate::error::ApiError;
use crate::state::AppState;

/// The layer around all of `/api` that applies [`reject_cross_site`]. It holds only what the
/// check reads, not the whole `AppState`: a layer is cloned with the routes under it.
#[derive(Clone)]
pub struct CrossSiteGuard {
    allowed_origins: Arc<[String]>,
    /// The database the demo profile counts refusals in; `None` outside the demo profile.
    demo_db: Option<DatabaseConnection>,
}

impl CrossSiteGuard {
    pub fn new(state: &AppState) -> Self {
        Self {
            allowed_origins: Arc::clone(&state.allowed_origins),
            demo_db: state.demo_clock.is_some().then(|| state.db.clone()),
        }
    }
}

impl<S> tower::Layer<S> for CrossSiteGuard {
    type Service = RejectCrossSite<S>;

    fn layer(&self, inner: S) -> RejectCrossSite<S> {
        RejectCrossSite { guard: self.clone(), inner }
    }
}

/// The service of [`CrossSiteGuard`]. The check needs nothing but the request's headers, so the
/// inner service is called directly; `axum::middleware::from_fn` would clone it (with everything
/// under it) on every request.
#[derive(Clone)]
pub struct RejectCrossSite<S> {
    guard: CrossSiteGuard,
    inner: S,
}

impl<S> tower::Service<Request> for RejectCrossSite<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match reject_cross_site(&self.guard, &request) {
            Some(refusal) => Box::pin(async move { Ok(refusal.await) }),
            None => Box::pin(self.inner.call(request)),
        }
    }
}

/// Refuses a state-changing request that a page of another site sent with the user's cookies:
/// the refusal to answer with, or `None` to let the request through.
///
/// This is the one place every scheme's cross-site protection lives: it wraps all of `/api`.
/// `SameSite=Lax` cookies already stay home on cross-site POSTs in current browsers; this check
/// does not depend on that, and also covers same-site-but-cross-origin pages.
fn reject_cross_site(
    guard: &CrossSiteGuard,
    request: &Request,
) -> Option<impl Future<Output = Response> + Send + 'static> {
    if request.method().is_safe() {
        return None;
    }
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if !is_cross_site(header("origin"), header("sec-fetch-site"), &guard.allowed_origins) {
        return None;
    }
    tracing::warn!(origin = ?header("origin"), "cross-site request refused");
    let demo_db = guard.demo_db.clone();
    Some(async move {
        if let Some(db) = &demo_db {
            crate::demo_events::count(db, crate::demo_events::CROSS_SITE_REFUSED).await;
        }
        ApiError::refused(Reason::CrossSiteRequest, "this request came from a page of another site")
            .into_response()
    })
}

/// The client's IP address, through a configured proxy's `X-Forwarded-For` only.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::internal("the server was started without connection info"))?;
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        Ok(ClientIp(client_ip(peer, forwarded, state.settings.trusted_proxies())))
    }
}
