//! The public HTTP API under `/api`. The lab page is one client of it; curl is another.

pub(crate) mod accounts;
mod demo;
pub mod device;
pub mod docs;
mod inspector;
pub mod oauth;
pub mod orders;
mod refusals;
pub mod session;
mod sessions;

use axum::Router;
use axum::http::Method;
use axum::response::IntoResponse;
use tokenlab_core::Reason;
use tokenlab_core::wire::OAuthErrorBody;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::session::SESSION_COOKIE;
use crate::error::{ApiError, ErrorBody};
use crate::middleware::AroundLayer;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenlab API",
        description = "Login tokens side by side: device token, session id as token, access + refresh \
                       tokens, and duplicate-submit protection. Every 4xx carries a machine-readable \
                       `reason`.",
    ),
    components(schemas(ErrorBody, OAuthErrorBody)),
    tags(
        (name = "accounts", description = "Registering users"),
        (name = "operations", description = "Health"),
        (name = "oauth", description = "Access + refresh tokens (article §4): RFC 6749 token endpoint, RFC 7009 revocation, bearer-protected resource"),
        (name = "device", description = "Scheme 1 — a device token, checked against the session and re-attached from the database (article §2.1), as written and hardened"),
        (name = "session", description = "Scheme 2 — the session id as the token (article §2.2)"),
        (name = "sessions", description = "Your sign-ins across every scheme: list them, end one, sign out everywhere"),
        (name = "orders", description = "Duplicate-submit protection (article §3): one-time form tokens and Idempotency-Key"),
        (name = "demo", description = "The lab's controls: movable clock, reset, session expiry, token-policy presets, server-state inspector (demo profile only; 404 otherwise)"),
    )
)]
struct ApiDoc;

/// The API router (to be nested at `/api`) and the OpenAPI document describing exactly its routes: both are produced from the
/// same `routes!` declarations, so a route cannot exist undocumented.
pub fn router(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(accounts::router(state))
        .merge(sessions::router(state))
        .merge(session::router(state))
        .merge(device::router(state))
        .merge(oauth::router())
        .merge(orders::router(state));
    if state.demo_clock.is_some() {
        api = api.merge(demo::router());
    }
    let (router, mut openapi) = api.split_for_parts();
    // Handlers declare paths relative to `/api`, where the caller nests this router; the document
    // states them as a client calls them.
    let paths = std::mem::take(&mut openapi.paths.paths);
    openapi.paths.paths =
        paths.into_iter().map(|(path, item)| (format!("/api{path}"), item)).collect();
    add_security_schemes(&mut openapi, state);
    oauth::mark_revoke_body_optional(&mut openapi);
    // One stack, one `.layer` (see `app::router`). The error shape (`error::json_errors`) is
    // enforced once, around all of `/api`, by `app::router`.
    let router = router.layer(
        tower::ServiceBuilder::new()
            // A lab instrument (the article's C3, counted); production does not advertise it.
            .option_layer(
                state.demo_clock.is_some().then_some(AroundLayer(crate::queries::StatementCount)),
            )
            .layer(AroundLayer(crate::guard::CrossSiteGuard::new(state))),
    );
    let router = router
        .fallback(|| async { ApiError::refused(Reason::NotFound, "no such API endpoint") })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::refused(Reason::MethodNotAllowed, format!("{method} is not allowed here"))
                .into_response()
        });
    (router, openapi)
}

/// How a caller signs in, as operations name it in their `security(...)`: an access token, the
/// device headers (both together), or the session-id cookie, under the name this server gives it.
fn add_security_schemes(openapi: &mut utoipa::openapi::OpenApi, state: &AppState) {
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".to_owned());
    bearer.description = Some("An access token from `POST /api/oauth/token`.".to_owned());
    let header = |name: &str, what: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
    };
    components.add_security_schemes_from_iter([
        ("bearer", SecurityScheme::Http(bearer)),
        ("device_id", header("X-Device-Id", "The device id the device logged in with.")),
        ("device_token", header("X-Device-Token", "The device token from the device login.")),
        (
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                state.cookies.cookie_name(SESSION_COOKIE),
                "The session id `POST /api/session/login` set.".to_owned(),
            ))),
        ),
    ]);
}
