//! Article §4's engine: access tokens (Ed25519 JWTs checked without a session) and refresh tokens
//! (opaque, stored hashed, rotated at every use, revoked as a whole family when a rotated one comes
//! back, RFC 9700 §4.14.2). `api/oauth.rs` speaks RFC 6749 over HTTP on top of it.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{Algorithm, Header};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set,
    TransactionTrait as _,
};
use secrecy::SecretString;
use sha2::Sha256;
use tokenlab_core::bearer::{
    AUDIENCE, RefreshOutcome, RotatedRefresh, TimeClaimError, TokenPolicy, check_time_claims,
    rotated_refresh, verify_access_token,
};
use tokenlab_core::dpop::check_binding;
use tokenlab_core::random::{decode_token, encode_token};
use tokenlab_core::wire::{AccessClaims, Confirmation};
use tokenlab_core::{Reason, Timestamp};

use crate::auth::dpop::{self, Target};
use crate::auth::password::{authenticate, still_current};
use crate::auth::revocation::family_handle;
use crate::auth::signout;
use crate::clock::from_unix_seconds;
use crate::entities::{refresh_families, refresh_tokens, users};
use crate::error::{ApiError, Context as _};
use crate::secrets::{new_token, storage_hash};
use crate::sessions::user_agent;
use crate::state::AppState;

/// Tokens just minted: the access token, and the refresh token that replaces the client's.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    /// For the refresh grant: whether this request rotated the token or repeated a rotation.
    pub refresh_outcome: Option<RefreshOutcome>,
    /// The thumbprint of the key both tokens are bound to (DPoP), if they are.
    pub dpop_jkt: Option<String>,
}

/// The password grant: check the password, start a refresh family, mint the first tokens. With
/// `dpop_jkt` (the thumbprint of the key a checked proof was signed with), the family and every
/// access token minted from it are bound to that key.
#[tracing::instrument(name = "bearer.password_grant", skip_all)]
pub async fn password_login(
    state: &AppState,
    username: &str,
    password: SecretString,
    client: std::net::IpAddr,
    headers: &HeaderMap,
    dpop_jkt: Option<String>,
) -> Result<Issued, ApiError> {
    let user = authenticate(state, username, password, client).await?;
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
        dpop_jkt: Set(dpop_jkt.clone()),
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
    still_current(&txn, &user).await?;
    txn.commit().await.context("starting a refresh-token family")?;
    let family = Minted { id: &family, dpop_jkt: dpop_jkt.as_deref() };
    issue(state, &policy, &user, family, refresh, expires_at, now).await
}

/// The child of a refresh token is derived from it with the server's HMAC key, so a client that
/// lost the response to its refresh can be given *the same* child again without the server ever
/// storing a token in clear — and nobody without the key can compute it.
async fn child_of(state: &AppState, parent: &str) -> Result<String, ApiError> {
    let key = state.keys.hmac_key()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(ApiError::internal)?;
    mac.update(parent.as_bytes());
    Ok(encode_token(&mac.finalize().into_bytes().into()))
}

/// The refresh_token grant: rotate the presented refresh token (or, within the grace window,
/// answer a retry with the same child), detect reuse, and mint a new access token. A family bound
/// to a key (DPoP) is refreshed only with a proof by that key (`dpop_jkt`, already checked), and a
/// bearer family only without one.
#[tracing::instrument(name = "bearer.refresh", skip_all)]
pub async fn refresh(
    state: &AppState,
    presented: &str,
    dpop_jkt: Option<&str>,
) -> Result<Issued, ApiError> {
    if decode_token(presented).is_none() {
        // Not in the form tokenlab issues: no lookup can find it.
        return Err(ApiError::refused(Reason::RefreshInvalid, "malformed refresh token"));
    }
    let now = state.clock.now();
    let hash = storage_hash(presented);
    let row = refresh_tokens::Entity::find_by_id(hash.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::refused(Reason::RefreshInvalid, "unknown refresh token"))?;
    let family = refresh_families::Entity::find_by_id(row.family_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("refresh token without a family"))?;
    if family.revoked_at.is_some() {
        return Err(ApiError::refused(
            Reason::RefreshRevoked,
            "this refresh token's family was revoked",
        ));
    }
    check_binding(family.dpop_jkt.as_deref(), dpop_jkt)
        .map_err(|mismatch| ApiError::refused(Reason::DpopProofInvalid, mismatch.to_string()))?;
    let minted = Minted { id: &family.id, dpop_jkt: family.dpop_jkt.as_deref() };
    let user = users::Entity::find_by_id(family.user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("refresh family of a missing user"))?;

    if row.rotated_at.is_none() {
        if now >= from_unix_seconds(row.expires_at)? {
            return Err(ApiError::refused(
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
            return issue(state, &policy, &user, minted, child, child_expires, now)
                .await
                .map(|issued| issued.after_refresh(RefreshOutcome::Rotated));
        }
        txn.rollback().await?;
        if family_revoked(state, &family.id).await? {
            return Err(ApiError::refused(
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
            issue(state, &policy, &user, minted, child, child_expires, now)
                .await
                .map(|issued| issued.after_refresh(RefreshOutcome::Repeated))
        }
        _ => {
            revoke_family(state, &family.id, "reused").await?;
            tracing::warn!(family = %family.id, "rotated refresh token presented again: family revoked");
            Err(ApiError::refused(
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

/// Revokes the family of a refresh token, if it is one of ours (RFC 7009 logout).
pub async fn revoke_by_refresh_token(state: &AppState, token: &str) -> Result<(), ApiError> {
    if decode_token(token).is_none() {
        return Ok(());
    }
    if let Some(row) =
        refresh_tokens::Entity::find_by_id(storage_hash(token)).one(&state.db).await?
    {
        revoke_family(state, &row.family_id, "revoked").await?;
    }
    Ok(())
}

/// Revokes one family (and so its access tokens), then refreshes this instance's cache at once.
#[tracing::instrument(name = "bearer.revoke_family", skip_all)]
pub async fn revoke_family(state: &AppState, family_id: &str, why: &str) -> Result<(), ApiError> {
    let now = state.clock.now();
    signout::revoke_families(&state.db, refresh_families::Column::Id.eq(family_id), why, now)
        .await?;
    state.revoked_families.reload_after_change(&state.db, state.clock.as_ref()).await;
    Ok(())
}

/// The family tokens are minted from: its id, and the key it is bound to.
#[derive(Debug, Clone, Copy)]
struct Minted<'a> {
    id: &'a str,
    dpop_jkt: Option<&'a str>,
}

/// Mints an access token and pairs it with the refresh token the client must now keep.
async fn issue(
    state: &AppState,
    policy: &TokenPolicy,
    user: &users::Model,
    family: Minted<'_>,
    refresh: String,
    refresh_expires_at: Timestamp,
    now: Timestamp,
) -> Result<Issued, ApiError> {
    let expires_at = policy.access_expires_at(now, refresh_expires_at);
    let claims = AccessClaims {
        iss: state.public_origin.to_string(),
        aud: AUDIENCE.to_owned(),
        sub: user.id.to_string(),
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: expires_at.unix_timestamp(),
        jti: new_token(state.secrets.as_ref())?[..32].to_owned(),
        sid: family_handle(family.id),
        preferred_username: user.username.clone(),
        cnf: family.dpop_jkt.map(|jkt| Confirmation { jkt: jkt.to_owned() }),
    };
    let (kid, key) = state.keys.signing_key()?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    let access_token = jsonwebtoken::encode(&header, &claims, &key).map_err(ApiError::internal)?;
    Ok(Issued {
        access_token,
        expires_in: (expires_at - now).whole_seconds(),
        refresh_token: refresh,
        refresh_expires_in: (refresh_expires_at - now).whole_seconds().max(0),
        refresh_outcome: None,
        dpop_jkt: family.dpop_jkt.map(str::to_owned),
    })
}

impl Issued {
    fn after_refresh(self, outcome: RefreshOutcome) -> Self {
        Self { refresh_outcome: Some(outcome), ..self }
    }
}

pub(crate) fn invalid_token(reason: Reason, description: &str) -> ApiError {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    let value = HeaderValue::from_str(&challenge)
        .unwrap_or(HeaderValue::from_static("Bearer error=\"invalid_token\""));
    ApiError::refused(reason, description.to_owned()).with_header(header::WWW_AUTHENTICATE, value)
}

/// Verifies an access token: [`verify_signed_claims`], and that its login was not ended (from the
/// revoked-families cache, without a database statement).
#[tracing::instrument(name = "bearer.check", level = "debug", skip_all)]
pub async fn bearer_claims(
    state: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
) -> Result<AccessClaims, ApiError> {
    let claims = verify_signed_claims(state, headers, target).await?;
    if state.revoked_families.contains(&claims.sid) {
        return Err(invalid_token(
            Reason::TokenRevoked,
            "the login this token belongs to was ended",
        ));
    }
    Ok(claims)
}

/// How the request presents its access token: `Authorization: Bearer`, or `Authorization: DPoP`
/// (RFC 9449 §7.1) for a token bound to a key, beside a proof in the `DPoP` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented<'a> {
    Bearer(&'a str),
    Dpop(&'a str),
}

fn presented_token(headers: &HeaderMap) -> Result<Presented<'_>, ApiError> {
    let missing = || {
        ApiError::refused(
            Reason::NotLoggedIn,
            "send Authorization: Bearer <access token>, or DPoP <access token> with a proof",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer, DPoP algs=\"ES256 EdDSA\""),
        )
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or_else(missing)?;
    if values.next().is_some() {
        // Which one would count? A proxy in front might read the other.
        return Err(invalid_token(Reason::TokenInvalid, "send one Authorization header"));
    }
    let (scheme, token) =
        value.to_str().ok().and_then(|v| v.split_once(' ')).ok_or_else(missing)?;
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(invalid_token(Reason::TokenInvalid, "the access token is not one word"));
    }
    // Authentication schemes compare case-insensitively (RFC 9110 §11.1).
    if scheme.eq_ignore_ascii_case("Bearer") {
        Ok(Presented::Bearer(token))
    } else if scheme.eq_ignore_ascii_case("DPoP") {
        Ok(Presented::Dpop(token))
    } else {
        Err(missing())
    }
}

/// What a resource server without a revocation check verifies: one algorithm, a `kid` naming
/// one of our unretired keys, the signature, every registered claim present and well-typed, `iss`
/// and `aud` ours, the time claims on the injected clock, and for a token bound to a key, a fresh
/// proof by that key for this request. Only the demo's contrast endpoint stops here; every real
/// check goes through [`bearer_claims`].
pub(crate) async fn verify_signed_claims(
    state: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
) -> Result<AccessClaims, ApiError> {
    match presented_token(headers)? {
        Presented::Bearer(token) => {
            let claims = unbound_claims(state, token)?;
            if claims.cnf.is_some() {
                return Err(dpop::challenged(ApiError::refused(
                    Reason::TokenBound,
                    "this access token is bound to a key: send it as Authorization: DPoP, with a proof",
                )));
            }
            Ok(claims)
        }
        Presented::Dpop(token) => {
            bound_claims(state, headers, target, token).await.map_err(dpop::challenged)
        }
    }
}

/// A token sent as `Authorization: DPoP`: bound to a key, and the request's proof signed by it,
/// naming this request and this token (`ath`), not seen before.
async fn bound_claims(
    state: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
    token: &str,
) -> Result<AccessClaims, ApiError> {
    let claims = unbound_claims(state, token)?;
    let Some(cnf) = &claims.cnf else {
        return Err(ApiError::refused(
            Reason::TokenInvalid,
            "this access token is not bound to a key: send it as Authorization: Bearer",
        ));
    };
    let proof = dpop::presented(headers)?.ok_or_else(|| {
        ApiError::refused(Reason::DpopProofInvalid, "a DPoP-bound token needs a DPoP proof header")
    })?;
    dpop::accept(state, proof, target, Some(token), Some(&cnf.jkt)).await?;
    Ok(claims)
}

/// The signature and the time claims of `token`, whatever its binding.
fn unbound_claims(state: &AppState, token: &str) -> Result<AccessClaims, ApiError> {
    let claims = match state.verified_tokens.get(token, &state.keys) {
        Some(claims) => claims,
        None => {
            let (kid, claims) = verify_signature(state, token)?;
            state.verified_tokens.insert(token, kid, claims.clone());
            claims
        }
    };
    check_time_claims(claims.iat, claims.nbf, claims.exp, state.clock.now()).map_err(
        |e| match e {
            TimeClaimError::Expired => {
                state.verified_tokens.forget(token);
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

/// The expensive half of the check, done once per token and instance (then cached): the header,
/// the `kid`, the Ed25519 signature, and every claim but the time claims, which depend on when
/// the token is used (`tokenlab_core::bearer::verify_access_token`).
fn verify_signature(state: &AppState, token: &str) -> Result<(String, AccessClaims), ApiError> {
    // `sid` is required by `AccessClaims` itself: a token without one (minted before logins could
    // be ended) is refused, and the client refreshes.
    verify_access_token(token, state.public_origin.as_ref(), |kid| state.keys.verifying_key(kid))
        .map_err(|rejection| invalid_token(Reason::TokenInvalid, &rejection.to_string()))
}

/// The bearer of a valid access token, for endpoints shared by the schemes: user id, name, and
/// the handle of the login (`sid`).
pub async fn bearer_user(
    state: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
) -> Result<(i64, String, String), ApiError> {
    let claims = bearer_claims(state, headers, target).await?;
    let id = claims
        .sub
        .parse()
        .map_err(|_| invalid_token(Reason::TokenInvalid, "sub is not a user id"))?;
    Ok((id, claims.preferred_username, claims.sid))
}
