//! Request guards shared by every scheme: the cross-site check and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokenlab_core::Reason;
use tokenlab_core::request::{client_ip, is_cross_site};

use crate::error::ApiError;
use crate::state::AppState;

/// Refuses a state-changing request that a page of another site sent with the user's cookies.
///
/// This is the one place every scheme's cross-site protection lives: it wraps all of `/api`.
/// `SameSite=Lax` cookies already stay home on cross-site POSTs in current browsers; this check
/// does not depend on that, and also covers same-site-but-cross-origin pages.
pub async fn reject_cross_site(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let cross_site = !request.method().is_safe() && {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let refused =
            is_cross_site(header("origin"), header("sec-fetch-site"), &state.allowed_origins);
        if refused {
            tracing::warn!(origin = ?header("origin"), "cross-site request refused");
        }
        refused
    };
    if !cross_site {
        return next.run(request).await;
    }
    if state.demo_clock.is_some() {
        crate::demo_events::count(&state.db, crate::demo_events::CROSS_SITE_REFUSED).await;
    }
    ApiError::refused(Reason::CrossSiteRequest, "this request came from a page of another site")
        .into_response()
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
