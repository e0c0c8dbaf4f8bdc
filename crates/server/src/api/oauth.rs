//! Article §4: access token + refresh token (claim C9).
//!
//! `POST /api/oauth/token` speaks RFC 6749: the password grant logs in, the refresh_token grant
//! exchanges a refresh token for a new access token *and* a new refresh token, which replace the
//! stored ones. The tokens' rules are applied in `auth::bearer`; this module is the HTTP side:
//! RFC 6749's request and error shapes, the browser's refresh cookie, RFC 7009 revocation, and the
//! bearer-protected resource.

use std::collections::BTreeMap;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use secrecy::{ExposeSecret as _, SecretString};
use tokenlab_core::Reason;
use tokenlab_core::bearer::RefreshOutcome;
use tokenlab_core::wire::credentials::{Grant, RevokeRequest, TokenRequest};
use tokenlab_core::wire::{
    BearerMe, Family, FamilyToken, FamilyTokenState, OAuthErrorBody, OAuthErrorCode, TokenInfo,
    TokenResponse, UserView,
};
use utoipa::openapi::RefOr;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{
    self, BEARER, Body, DPOP_PROOF, DpopProofHeader, EVERY_REQUEST, PASSWORD_CHECK, STATE_CHANGING,
    refusals,
};
use crate::auth::bearer::{self, Issued, bearer_claims, invalid_token};
use crate::auth::dpop::{self, Target};
use crate::clock::from_unix_seconds;
use crate::entities::{refresh_families, refresh_tokens};
use crate::error::ApiError;
use crate::extract::JsonOrForm;
use crate::guard::ClientIp;
use crate::secrets::storage_hash;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(revoke))
        .routes(routes!(family))
        .routes(routes!(me))
}

/// What a grant is refused with: the request, its DPoP proof, the password check, the refresh
/// token.
const GRANT_REFUSALS: [&[Reason]; 4] = [
    &[Reason::InvalidRequest, Reason::UnsupportedGrantType],
    DPOP_PROOF,
    PASSWORD_CHECK,
    &[
        Reason::RefreshInvalid,
        Reason::RefreshExpired,
        Reason::RefreshRevoked,
        Reason::RefreshReused,
    ],
];

/// The token endpoint's refusals: a grant's in RFC 6749's shape ([`oauth_status`]); a layer's
/// (cross-site, a fault) in the one error body, like every other endpoint's.
struct TokenRefusals;

impl utoipa::IntoResponses for TokenRefusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let layers = [EVERY_REQUEST, STATE_CHANGING].into_iter().flatten();
        let grants = GRANT_REFUSALS.into_iter().flatten();
        refusals::grouped(
            layers
                .map(|&reason| (reason.status(), Body::Error, reason))
                .chain(grants.map(|&reason| (oauth_status(reason).as_u16(), Body::OAuth, reason))),
        )
    }
}

refusals!(RevokeRefusals = STATE_CHANGING);
refusals!(FamilyRefusals = &[Reason::NotFound]);
refusals!(BearerRefusals = BEARER);

impl From<Issued> for TokenResponse {
    fn from(issued: Issued) -> Self {
        let token_type = if issued.dpop_jkt.is_some() { "DPoP" } else { "Bearer" };
        Self {
            access_token: issued.access_token,
            token_type: token_type.to_owned(),
            expires_in: issued.expires_in,
            refresh_token: Some(issued.refresh_token),
            refresh_expires_in: issued.refresh_expires_in,
        }
    }
}

/// A refusal of the token endpoint: the one mapping from [`ApiError`] to RFC 6749 §5.2's shape.
/// A refused request keeps its `reason` beside the standard `error` code; a server fault is
/// answered like every other 500.
struct OAuthError(ApiError);

impl From<ApiError> for OAuthError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let ApiError::Refused { reason, message, headers, .. } = self.0 else {
            return self.0.into_response();
        };
        let status = oauth_status(reason);
        let body = OAuthErrorBody {
            error: OAuthErrorCode::for_reason(reason),
            error_description: message.clone(),
            reason,
            message,
        };
        let mut response = (status, no_store(), axum::Json(body)).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The status a refused grant is answered with: 429 and 503 keep their own; every other grant
/// error is a 400 (RFC 6749 §5.2).
fn oauth_status(reason: Reason) -> StatusCode {
    match reason {
        Reason::RateLimited | Reason::ServerBusy => {
            StatusCode::from_u16(reason.status()).unwrap_or(StatusCode::BAD_REQUEST)
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// RFC 6749 §5.1: token responses must not be cached.
fn no_store() -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// Exchange a password or a refresh token for tokens.
///
/// With `X-Refresh-Cookie: 1` (the browser variant) the refresh token is set as the HttpOnly cookie
/// `tl_refresh` instead of sent in the body, and the refresh grant reads it from there. A body that
/// is neither a form nor JSON, or does not parse, is `invalid_request`.
///
/// With a `DPoP` proof (RFC 9449) the tokens are bound to the proof's key: `token_type` is `DPoP`,
/// the access token carries `cnf.jkt`, and the refresh token is exchanged only with a proof by the
/// same key. When the server requires nonces, a proof without the current one is answered 400
/// `use_dpop_nonce` with the nonce in `DPoP-Nonce`; sign a new proof with it and retry.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    params(DpopProofHeader),
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Tokens, with `Cache-Control: no-store`. A refresh also \
            answers `X-Tokenlab-Refresh`: `rotated` when this request exchanged the token, `repeated` \
            when another request had just done so and this one got the same child (the grace window)",
            body = TokenResponse,
            headers(("DPoP-Nonce" = String, description = "With a DPoP proof, when the server \
                requires nonces: the nonce the next proofs carry"))),
        TokenRefusals,
    ))]
async fn token(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    request: Result<JsonOrForm<TokenRequest>, ApiError>,
) -> Result<Response, OAuthError> {
    let JsonOrForm(request) = request?;
    let grant = request.into_grant(refresh_cookie(&state, &headers)).map_err(ApiError::from)?;
    // The proof is judged before the password or the refresh token, so a bad proof costs no hash.
    let dpop_jkt = match dpop::presented(&headers)? {
        Some(proof) => {
            let target = Target { method: &method, path: uri.path() };
            Some(dpop::accept(&state, proof, target, None, None).await?.jkt)
        }
        None => None,
    };
    let bound = dpop_jkt.is_some();
    let response = match grant {
        Grant::Password { username, password } => {
            bearer::password_login(&state, &username, password, client, &headers, dpop_jkt).await?
        }
        Grant::RefreshToken(refresh) => {
            bearer::refresh(&state, refresh.expose_secret(), dpop_jkt.as_deref()).await?
        }
    };
    let outcome = response.refresh_outcome;
    let mut http = respond(&state, &headers, response.into());
    if let Some(outcome) = outcome {
        http.headers_mut()
            .insert(RefreshOutcome::HEADER, HeaderValue::from_static(outcome.as_str()));
    }
    if bound && let Some((name, value)) = dpop::current_nonce(&state)? {
        http.headers_mut().insert(name, value);
    }
    Ok(http)
}

/// The refresh cookie's name: `__Secure-` when served over https (the `__Host-` prefix would
/// force `Path=/`, and this cookie must only travel to `/api/oauth`).
fn refresh_cookie_name(state: &AppState) -> String {
    if state.cookies.secure {
        format!("__Secure-{REFRESH_COOKIE}")
    } else {
        REFRESH_COOKIE.to_owned()
    }
}

const REFRESH_COOKIE: &str = "tl_refresh";

/// The refresh token the browser's cookie carries, if any.
/// Only the name this server sets counts: over https that is `__Secure-tl_refresh`, which only a
/// secure origin can set, so a plain `tl_refresh` tossed in from a sibling subdomain or over
/// http is ignored rather than preferred.
fn refresh_cookie(state: &AppState, headers: &HeaderMap) -> Option<SecretString> {
    let jar = CookieJar::from_headers(headers);
    let cookie = jar.get(&refresh_cookie_name(state))?;
    Some(SecretString::from(cookie.value()))
}

fn refresh_cookie_header(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let cookie = Cookie::build((refresh_cookie_name(state), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/api/oauth")
        .max_age(time::Duration::seconds(max_age))
        .secure(state.cookies.secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// The token response; in the browser variant the refresh token moves from the body to the cookie.
fn respond(state: &AppState, headers: &HeaderMap, mut response: TokenResponse) -> Response {
    let browser = headers.get("x-refresh-cookie").is_some_and(|v| v == "1");
    let cookie = if browser {
        response
            .refresh_token
            .take()
            .and_then(|token| refresh_cookie_header(state, &token, response.refresh_expires_in))
    } else {
        None
    };
    let mut http = (StatusCode::OK, no_store(), axum::Json(response)).into_response();
    if let Some(cookie) = cookie {
        http.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    http
}

/// RFC 7009 §2.2: a revocation with no body at all is answered 200 like any other. utoipa marks a
/// body optional only when its type is an `Option`, whose `null` variant next to an any-value
/// schema would make the `oneOf` ambiguous, so the flag is cleared in the finished document.
pub fn mark_revoke_body_optional(openapi: &mut utoipa::openapi::OpenApi) {
    let operation = openapi.paths.paths.get_mut("/api/oauth/revoke").and_then(|p| p.post.as_mut());
    if let Some(body) = operation.and_then(|o| o.request_body.as_mut()) {
        body.required = Some(utoipa::openapi::Required::False);
    }
}

/// Revoke a refresh token's whole family (logout); the `tl_refresh` cookie is used, and cleared,
/// when no `token` is sent. 200 whether or not the token existed, and whatever the body holds, as
/// RFC 7009 §2.2 requires, so the endpoint tells nobody whether a token existed.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content(
        (RevokeRequest = "application/x-www-form-urlencoded"),
        (RevokeRequest = "application/json"),
    )),
    responses((status = 200, description = "Revoked, or nothing to revoke"), RevokeRefusals))]
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<JsonOrForm<RevokeRequest>, ApiError>,
) -> Result<Response, ApiError> {
    // A body that does not parse names no token: RFC 7009 §2.2 answers 200 all the same.
    let sent = request.ok().and_then(|JsonOrForm(r)| r.token);
    if let Some(token) = sent.or_else(|| refresh_cookie(&state, &headers)) {
        bearer::revoke_by_refresh_token(&state, token.expose_secret()).await?;
    }
    let mut response = StatusCode::OK.into_response();
    if refresh_cookie(&state, &headers).is_some()
        && let Some(expired) = refresh_cookie_header(&state, "", 0)
    {
        response.headers_mut().insert(header::SET_COOKIE, expired);
    }
    Ok(response)
}

/// The refresh-token family of the `tl_refresh` cookie, as a chain, oldest first.
///
/// Without the cookie, or with a token this server does not know, `not_found`.
#[utoipa::path(get, path = "/oauth/family", tag = "oauth",
    responses((status = 200, body = Family), FamilyRefusals))]
async fn family(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<Family>, ApiError> {
    let not_found = || ApiError::refused(Reason::NotFound, "no refresh token to show");
    let presented_hash =
        storage_hash(refresh_cookie(&state, &headers).ok_or_else(not_found)?.expose_secret());
    let row = refresh_tokens::Entity::find_by_id(presented_hash.clone())
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    let family = refresh_families::Entity::find_by_id(row.family_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    let mut rows = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::FamilyId.eq(family.id.as_str()))
        .all(&state.db)
        .await?;
    rows.sort_by_key(|r| (r.issued_at, r.rotated_at.is_none()));
    let tokens = rows
        .into_iter()
        .map(|r| {
            let state_name = if family.revoked_at.is_some() {
                FamilyTokenState::Revoked
            } else if r.rotated_at.is_some() {
                FamilyTokenState::Rotated
            } else {
                FamilyTokenState::Active
            };
            Ok(FamilyToken {
                hash_prefix: r.token_hash.chars().take(8).collect(),
                issued_at: from_unix_seconds(r.issued_at)?,
                expires_at: from_unix_seconds(r.expires_at)?,
                state: state_name,
                presented: r.token_hash == presented_hash,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(axum::Json(Family {
        revoked_reason: family.revoked_reason,
        dpop_jkt: family.dpop_jkt,
        tokens,
    }))
}

/// Who the bearer of this access token is; no session, no database statement for a bearer token
/// (one, the replay store's, for a DPoP-bound token and its proof).
#[utoipa::path(get, path = "/jwt/me", tag = "oauth", security(("bearer" = [])),
    params(DpopProofHeader),
    responses((status = 200, body = BearerMe), BearerRefusals))]
async fn me(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<BearerMe>, ApiError> {
    let target = Target { method: &method, path: uri.path() };
    let claims = bearer_claims(&state, &headers, target).await?;
    let id = claims
        .sub
        .parse()
        .map_err(|_| invalid_token(Reason::TokenInvalid, "sub is not a user id"))?;
    Ok(axum::Json(BearerMe {
        user: UserView { id, username: claims.preferred_username },
        token: TokenInfo {
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
            dpop_jkt: claims.cnf.map(|cnf| cnf.jkt),
        },
    }))
}
