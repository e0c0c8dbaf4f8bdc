//! Article §4: access token + refresh token (claim C9).
//!
//! `POST /api/oauth/token` speaks RFC 6749: the password grant logs in, the refresh_token grant
//! exchanges a refresh token for a new access token *and* a new refresh token, which replace the
//! stored ones. Access tokens are Ed25519-signed JWTs checked without a session; refresh tokens are
//! opaque, stored hashed, rotated at every use, and revoked as a whole family when a rotated one
//! comes back (RFC 9700 §4.14.2).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{Algorithm, Header, Validation};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set,
    TransactionTrait as _,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokenlab_core::bearer::{
    RotatedRefresh, TimeClaimError, TokenPolicy, check_time_claims, rotated_refresh,
};
use tokenlab_core::{Reason, Timestamp};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::session::UserView;
use crate::clock::from_unix_seconds;
use crate::entities::{refresh_families, refresh_tokens, users};
use crate::error::{ApiError, ErrorBody};
use crate::guard::ClientIp;
use crate::keys;
use crate::login::{authenticate, still_current};
use crate::revocation::family_handle;
use crate::secrets::{new_token, storage_hash};
use crate::sessions::user_agent;
use crate::signout;
use crate::state::AppState;

/// The audience every access token is minted for and checked against.
pub const AUDIENCE: &str = "tokenlab-api";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(revoke))
        .routes(routes!(family))
        .routes(routes!(me))
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    nbf: i64,
    pub(crate) exp: i64,
    jti: String,
    /// The refresh-token family this token was minted from (`revocation::family_handle`): ending
    /// that login refuses the token.
    sid: String,
    preferred_username: String,
}

/// RFC 6749 §4.3.2 / §6. Form-encoded, as the RFC requires; JSON is accepted too.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `password` or `refresh_token`.
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds the access token lives.
    expires_in: i64,
    /// Replaces the one the client holds: the old one is spent. Absent when the request asked for
    /// the browser variant (`X-Refresh-Cookie: 1`): the token then travels only in the HttpOnly
    /// cookie `tl_refresh`, out of the page's JavaScript.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    refresh_expires_in: i64,
}

/// RFC 6749 §5.2, with tokenlab's `reason` beside the standard `error`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    #[schema(example = "invalid_grant")]
    error: &'static str,
    error_description: String,
    #[schema(example = "refresh_reused")]
    reason: &'static str,
    message: String,
}

/// A refusal of the token endpoint, in the RFC's shape.
struct OAuthError {
    error: &'static str,
    reason: Reason,
    description: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

enum TokenFailure {
    OAuth(OAuthError),
    Server(ApiError),
}

impl From<ApiError> for TokenFailure {
    fn from(err: ApiError) -> Self {
        TokenFailure::Server(err)
    }
}

impl From<sea_orm::DbErr> for TokenFailure {
    fn from(err: sea_orm::DbErr) -> Self {
        TokenFailure::Server(err.into())
    }
}

fn grant_error(reason: Reason, description: impl Into<String>) -> TokenFailure {
    let error = match reason {
        Reason::UnsupportedGrantType => "unsupported_grant_type",
        Reason::InvalidRequest | Reason::InvalidJson | Reason::UnsupportedMediaType => {
            "invalid_request"
        }
        _ => "invalid_grant",
    };
    TokenFailure::OAuth(OAuthError {
        error,
        reason,
        description: description.into(),
        headers: Vec::new(),
    })
}

impl IntoResponse for TokenFailure {
    fn into_response(self) -> Response {
        match self {
            TokenFailure::Server(err) => err.into_response(),
            TokenFailure::OAuth(e) => {
                // 429 keeps its own status; every other grant error is a 400 (RFC 6749 §5.2).
                let status = if e.reason == Reason::RateLimited {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::BAD_REQUEST
                };
                let body = OAuthErrorBody {
                    error: e.error,
                    error_description: e.description.clone(),
                    reason: e.reason.code(),
                    message: e.description,
                };
                let mut response = (status, no_store(), axum::Json(body)).into_response();
                for (name, value) in e.headers {
                    response.headers_mut().insert(name, value);
                }
                response
            }
        }
    }
}

/// RFC 6749 §5.1: token responses must not be cached.
fn no_store() -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

fn parse_request(headers: &HeaderMap, body: &Bytes) -> Result<TokenRequest, TokenFailure> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        serde_json::from_slice(body).map_err(|e| grant_error(Reason::InvalidRequest, e.to_string()))
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| grant_error(Reason::InvalidRequest, e.to_string()))
    } else {
        Err(grant_error(Reason::InvalidRequest, "send application/x-www-form-urlencoded (or JSON)"))
    }
}

/// Exchange a password or a refresh token for tokens.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens, with `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "`invalid_grant` (reasons `invalid_credentials`, `refresh_invalid`, `refresh_expired`, `refresh_revoked`, `refresh_reused`), `invalid_request`, `unsupported_grant_type`", body = OAuthErrorBody),
        (status = 429, description = "`rate_limited`", body = OAuthErrorBody),
    ))]
async fn token(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenFailure> {
    let request = parse_request(&headers, &body)?;
    let response = match request.grant_type.as_deref() {
        Some("password") => {
            let (Some(username), Some(password)) = (request.username, request.password) else {
                return Err(grant_error(
                    Reason::InvalidRequest,
                    "the password grant needs username and password",
                ));
            };
            password_grant(&state, &username, password, client, &headers).await?
        }
        Some("refresh_token") => {
            let Some(refresh) = request.refresh_token.or_else(|| refresh_cookie(&headers)) else {
                return Err(grant_error(
                    Reason::InvalidRequest,
                    "the refresh_token grant needs refresh_token",
                ));
            };
            refresh_grant(&state, &refresh).await?
        }
        Some(_) => {
            return Err(grant_error(Reason::UnsupportedGrantType, "use password or refresh_token"));
        }
        None => return Err(grant_error(Reason::InvalidRequest, "grant_type is missing")),
    };
    Ok(respond(&state, &headers, response))
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

fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim_start_matches("__Secure-") == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn refresh_cookie_header(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.cookies.secure { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/api/oauth; Max-Age={max_age}{secure}",
        refresh_cookie_name(state)
    );
    HeaderValue::from_str(&cookie).ok()
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

async fn password_grant(
    state: &AppState,
    username: &str,
    password: String,
    client: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<TokenResponse, TokenFailure> {
    let user = authenticate(state, username, password, client).await.map_err(oauth_refusal)?;
    let now = state.clock.now();
    let policy = crate::policy::current(state).await?;
    let family = new_token(state.secrets.as_ref())?;
    let refresh = new_token(state.secrets.as_ref())?;
    let expires_at = policy.refresh_expires_at(now, now);
    // The family, its first token and the check that the password is still the user's, together.
    let txn = state.db.begin().await?;
    refresh_families::ActiveModel {
        id: Set(family.clone()),
        user_id: Set(user.id),
        created_at: Set(now.unix_timestamp()),
        absolute_expires_at: Set((now + policy.refresh_absolute).unix_timestamp()),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        user_agent: Set(Some(user_agent(headers))),
    }
    .insert(&txn)
    .await?;
    refresh_tokens::ActiveModel {
        token_hash: Set(storage_hash(&refresh)),
        family_id: Set(family.clone()),
        parent_hash: Set(None),
        issued_at: Set(now.unix_timestamp()),
        expires_at: Set(expires_at.unix_timestamp()),
        rotated_at: Set(None),
        child_hash: Set(None),
    }
    .insert(&txn)
    .await?;
    still_current(&txn, &user).await.map_err(oauth_refusal)?;
    txn.commit().await?;
    issue(state, &policy, &user, &family, refresh, expires_at, now).await
}

/// A refusal by the login machinery, in the token endpoint's RFC 6749 shape.
fn oauth_refusal(err: ApiError) -> TokenFailure {
    match err {
        ApiError::Refused { reason, message, headers, .. } => TokenFailure::OAuth(OAuthError {
            error: "invalid_grant",
            reason,
            description: message,
            headers,
        }),
        internal => TokenFailure::Server(internal),
    }
}

/// The child of a refresh token is derived from it with the server's HMAC key, so a client that
/// lost the response to its refresh can be given *the same* child again without the server ever
/// storing a token in clear — and nobody without the key can compute it.
async fn child_of(state: &AppState, parent: &str) -> Result<String, ApiError> {
    let key = keys::hmac_key(&state.db).await?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(ApiError::internal)?;
    mac.update(parent.as_bytes());
    Ok(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
}

async fn refresh_grant(state: &AppState, presented: &str) -> Result<TokenResponse, TokenFailure> {
    let now = state.clock.now();
    let hash = storage_hash(presented);
    let row = refresh_tokens::Entity::find_by_id(hash.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| grant_error(Reason::RefreshInvalid, "unknown refresh token"))?;
    let family = refresh_families::Entity::find_by_id(row.family_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("refresh token without a family"))?;
    if family.revoked_at.is_some() {
        return Err(grant_error(Reason::RefreshRevoked, "this refresh token's family was revoked"));
    }
    let user = users::Entity::find_by_id(family.user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("refresh family of a missing user"))?;

    if row.rotated_at.is_none() {
        if now >= from_unix_seconds(row.expires_at)? {
            return Err(grant_error(
                Reason::RefreshExpired,
                "the refresh token expired; log in again",
            ));
        }
        let child = child_of(state, presented).await?;
        let policy = crate::policy::current(state).await?;
        // The family's end was fixed at login; a preset switched since then does not move it.
        let child_expires =
            policy.refresh_expires_within(now, from_unix_seconds(family.absolute_expires_at)?);
        let txn = state.db.begin().await?;
        // Only one of any number of concurrent refreshes with this token matches.
        let rotated = refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::RotatedAt, Expr::value(now.unix_timestamp()))
            .col_expr(refresh_tokens::Column::ChildHash, Expr::value(storage_hash(&child)))
            .filter(refresh_tokens::Column::TokenHash.eq(hash.as_str()))
            .filter(refresh_tokens::Column::RotatedAt.is_null())
            // Checked again here, not only above: a logout or a password change that commits
            // between that read and this update must not be outrun by a rotation.
            .filter(
                refresh_tokens::Column::FamilyId.in_subquery(
                    Query::select()
                        .column(refresh_families::Column::Id)
                        .from(refresh_families::Entity)
                        .and_where(refresh_families::Column::RevokedAt.is_null())
                        .to_owned(),
                ),
            )
            .exec(&txn)
            .await?;
        if rotated.rows_affected == 1 {
            refresh_tokens::ActiveModel {
                token_hash: Set(storage_hash(&child)),
                family_id: Set(family.id.clone()),
                parent_hash: Set(Some(hash.clone())),
                issued_at: Set(now.unix_timestamp()),
                expires_at: Set(child_expires.unix_timestamp()),
                rotated_at: Set(None),
                child_hash: Set(None),
            }
            .insert(&txn)
            .await?;
            txn.commit().await?;
            return issue(state, &policy, &user, &family.id, child, child_expires, now).await;
        }
        txn.rollback().await?;
        if family_revoked(state, &family.id).await? {
            return Err(grant_error(
                Reason::RefreshRevoked,
                "this refresh token's family was revoked",
            ));
        }
    }
    // Already exchanged (before, or a moment ago by a concurrent request).
    let row = refresh_tokens::Entity::find_by_id(hash.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("refresh token vanished"))?;
    let child_row = match &row.child_hash {
        Some(child_hash) => {
            refresh_tokens::Entity::find_by_id(child_hash.clone()).one(&state.db).await?
        }
        None => None,
    };
    let child_is_current = child_row.as_ref().is_some_and(|c| c.rotated_at.is_none());
    let rotated_at = from_unix_seconds(row.rotated_at.unwrap_or(now.unix_timestamp()))?;
    match (rotated_refresh(rotated_at, child_is_current, now), child_row) {
        (RotatedRefresh::Retry, Some(child_row)) => {
            let child = child_of(state, presented).await?;
            let policy = crate::policy::current(state).await?;
            let child_expires = from_unix_seconds(child_row.expires_at)?;
            issue(state, &policy, &user, &family.id, child, child_expires, now).await
        }
        _ => {
            revoke_family(state, &family.id, "reused").await?;
            tracing::warn!(family = %family.id, "rotated refresh token presented again: family revoked");
            Err(grant_error(
                Reason::RefreshReused,
                "this refresh token was already used; its family is revoked, log in again",
            ))
        }
    }
}

async fn family_revoked(state: &AppState, family_id: &str) -> Result<bool, ApiError> {
    Ok(refresh_families::Entity::find_by_id(family_id.to_owned())
        .one(&state.db)
        .await?
        .is_none_or(|f| f.revoked_at.is_some()))
}

/// Revokes one family (and so its access tokens), then refreshes this instance's cache at once.
async fn revoke_family(state: &AppState, family_id: &str, why: &str) -> Result<(), ApiError> {
    let now = state.clock.now();
    signout::revoke_families(&state.db, refresh_families::Column::Id.eq(family_id), why, now)
        .await?;
    state.revoked_families.reload(&state.db, state.clock.as_ref()).await?;
    Ok(())
}

/// Mints an access token and pairs it with the refresh token the client must now keep.
async fn issue(
    state: &AppState,
    policy: &TokenPolicy,
    user: &users::Model,
    family_id: &str,
    refresh: String,
    refresh_expires_at: Timestamp,
    now: Timestamp,
) -> Result<TokenResponse, TokenFailure> {
    let expires_at = policy.access_expires_at(now, refresh_expires_at);
    let claims = Claims {
        iss: state.public_origin.to_string(),
        aud: AUDIENCE.to_owned(),
        sub: user.id.to_string(),
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: expires_at.unix_timestamp(),
        jti: new_token(state.secrets.as_ref())?[..32].to_owned(),
        sid: family_handle(family_id),
        preferred_username: user.username.clone(),
    };
    let (kid, key) = keys::signing_key(&state.db).await?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    let access_token = jsonwebtoken::encode(&header, &claims, &key).map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: (expires_at - now).whole_seconds(),
        refresh_token: Some(refresh),
        refresh_expires_in: (refresh_expires_at - now).whole_seconds().max(0),
    })
}

/// RFC 7009 form (`token=…`), or JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeRequest {
    token: Option<String>,
}

/// Revoke a refresh token's whole family (logout); the `tl_refresh` cookie is used, and cleared,
/// when no `token` is sent. Always 200, as RFC 7009 §2.2 requires, so the
/// endpoint tells nobody whether a token existed.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or nothing to revoke")))]
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let request: Option<RevokeRequest> = if content_type.starts_with("application/json") {
        serde_json::from_slice(&body).ok()
    } else {
        serde_urlencoded::from_bytes(&body).ok()
    };
    if let Some(token) = request.and_then(|r| r.token).or_else(|| refresh_cookie(&headers))
        && let Some(row) =
            refresh_tokens::Entity::find_by_id(storage_hash(&token)).one(&state.db).await?
    {
        revoke_family(&state, &row.family_id, "revoked").await?;
    }
    let mut response = StatusCode::OK.into_response();
    if refresh_cookie(&headers).is_some()
        && let Some(expired) = refresh_cookie_header(&state, "", 0)
    {
        response.headers_mut().insert(header::SET_COOKIE, expired);
    }
    Ok(response)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FamilyToken {
    /// The first characters of the token's SHA-256: enough to tell tokens apart, useless to a thief.
    hash_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    issued_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
    /// `active`, `rotated` or `revoked`.
    state: &'static str,
    /// This is the token the request carried.
    presented: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Family {
    /// `null`, or why the family was revoked: `revoked` (logout) or `reused`.
    revoked_reason: Option<String>,
    tokens: Vec<FamilyToken>,
}

/// The refresh-token family of the `tl_refresh` cookie, as a chain, oldest first.
#[utoipa::path(get, path = "/oauth/family", tag = "oauth",
    responses((status = 200, body = Family),
              (status = 404, description = "`not_found`: no refresh cookie, or an unknown token", body = ErrorBody)))]
async fn family(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<Family>, ApiError> {
    let not_found = || ApiError::refused(Reason::NotFound, "no refresh token to show");
    let presented_hash = storage_hash(&refresh_cookie(&headers).ok_or_else(not_found)?);
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
                "revoked"
            } else if r.rotated_at.is_some() {
                "rotated"
            } else {
                "active"
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
    Ok(axum::Json(Family { revoked_reason: family.revoked_reason, tokens }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BearerMe {
    user: UserView,
    token: TokenInfo,
}

/// Who the bearer of this access token is; no session, one key lookup.
#[utoipa::path(get, path = "/jwt/me", tag = "oauth",
    params(("Authorization" = String, Header, description = "`Bearer <access token>`")),
    responses(
        (status = 200, body = BearerMe),
        (status = 401, description = "`token_expired`, `token_invalid`, `not_logged_in`; with `WWW-Authenticate: Bearer error=\"invalid_token\"`", body = ErrorBody),
    ))]
async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<BearerMe>, ApiError> {
    let claims = bearer_claims(&state, &headers).await?;
    let id = claims
        .sub
        .parse()
        .map_err(|_| invalid_token(Reason::TokenInvalid, "sub is not a user id"))?;
    Ok(axum::Json(BearerMe {
        user: UserView { id, username: claims.preferred_username },
        token: TokenInfo { iat: claims.iat, exp: claims.exp, jti: claims.jti },
    }))
}

fn invalid_token(reason: Reason, description: &str) -> ApiError {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    let value = HeaderValue::from_str(&challenge)
        .unwrap_or(HeaderValue::from_static("Bearer error=\"invalid_token\""));
    ApiError::refused(reason, description.to_owned()).with_header(header::WWW_AUTHENTICATE, value)
}

/// Verifies an `Authorization: Bearer` access token: [`verify_signed_claims`], and that its login
/// was not ended (from the revoked-families cache, without a database statement).
async fn bearer_claims(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let claims = verify_signed_claims(state, headers).await?;
    if state.revoked_families.contains(&claims.sid) {
        return Err(invalid_token(
            Reason::TokenRevoked,
            "the login this token belongs to was ended",
        ));
    }
    Ok(claims)
}

/// What a resource server without a revocation check verifies: one algorithm, a `kid` naming
/// one of our unretired keys, the signature, every registered claim present and well-typed, `iss`
/// and `aud` ours, and the time claims on the injected clock. Only the demo's contrast endpoint
/// stops here; every real check goes through [`bearer_claims`].
pub(crate) async fn verify_signed_claims(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Claims, ApiError> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(ApiError::refused(
            Reason::NotLoggedIn,
            "send Authorization: Bearer <access token>",
        )
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    };
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid_token(Reason::TokenInvalid, "malformed token"))?;
    if header.alg != Algorithm::EdDSA {
        return Err(invalid_token(Reason::TokenInvalid, "algorithm not accepted"));
    }
    let kid = header.kid.ok_or_else(|| invalid_token(Reason::TokenInvalid, "no kid"))?;
    let key = keys::verifying_key(&state.db, &kid)
        .await?
        .ok_or_else(|| invalid_token(Reason::TokenInvalid, "unknown or retired kid"))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    // Time is checked below on the injected clock; the library would read the system clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = tokenlab_core::bearer::LEEWAY.whole_seconds().unsigned_abs();
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[state.public_origin.as_ref()]);
    validation.set_required_spec_claims(&["iss", "aud", "sub", "exp", "nbf"]);
    // `sid` is required by `Claims` itself: a token without one (minted before logins could be
    // ended) is refused, and the client refreshes.
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| invalid_token(Reason::TokenInvalid, &format!("rejected: {e}")))?;
    let claims = data.claims;
    check_time_claims(claims.iat, claims.nbf, claims.exp, state.clock.now()).map_err(
        |e| match e {
            TimeClaimError::Expired => {
                invalid_token(Reason::TokenExpired, "the access token expired")
            }
            TimeClaimError::NotYetValid => invalid_token(Reason::TokenInvalid, "not valid yet"),
            TimeClaimError::IssuedInTheFuture => {
                invalid_token(Reason::TokenInvalid, "issued in the future")
            }
        },
    )?;
    Ok(claims)
}

/// The bearer of a valid access token, for endpoints shared by the schemes: user id, name, and
/// the handle of the login (`sid`).
pub async fn bearer_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(i64, String, String), ApiError> {
    let claims = bearer_claims(state, headers).await?;
    let id = claims
        .sub
        .parse()
        .map_err(|_| invalid_token(Reason::TokenInvalid, "sub is not a user id"))?;
    Ok((id, claims.preferred_username, claims.sid))
}
