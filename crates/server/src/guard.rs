//! Request guards shared by every scheme: the cross-site check and the client's address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::HeaderName;
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};
use sea_orm::DatabaseConnection;
use tokenlab_core::Reason;
use tokenlab_core::request::{client_ip, is_cross_site};

use crate::error::ApiError;
use crate::state::AppState;

/// The middleware around all of `/api` that applies [`reject_cross_site`]. It holds only what the
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

impl crate::middleware::Around for CrossSiteGuard {
    fn around<S: crate::middleware::NextService>(
        &self,
        request: Request,
        next: crate::middleware::Next<'_, S>,
    ) -> crate::middleware::Answer {
        match reject_cross_site(self, &request) {
            Some(refusal) => Box::pin(refusal),
            None => Box::pin(next.run(request)),
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

/// Named once: a name given as text is parsed on every lookup.
static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

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
        let forwarded = parts.headers.get(&FORWARDED_FOR).and_then(|v| v.to_str().ok());
        Ok(ClientIp(client_ip(peer, forwarded, state.settings.trusted_proxies())))
    }
}
