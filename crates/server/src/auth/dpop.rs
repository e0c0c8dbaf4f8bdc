//! Proofs of possession at the server (DPoP, RFC 9449): reading the `DPoP` header, judging the
//! proof with core's rules on the injected clock, comparing its key with the one a token or a
//! refresh family is bound to, and spending its `jti` in the replay store every instance shares.
//!
//! The nonce the server asks for (`DPoP-Nonce`) is derived from the refresh-derivation key and the
//! time (`tokenlab_core::dpop::nonce`): any instance hands out and accepts the same nonces, and
//! none is stored.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tokenlab_core::Reason;
use tokenlab_core::dpop::{
    NonceRule, PROOF_MAX_AGE, ProofContext, ProofRejection, VerifiedProof, verify_proof,
};
use zeroize::Zeroizing;

use crate::config::DpopNonces;
use crate::error::ApiError;
use crate::secrets::storage_hash;
use crate::state::AppState;

/// The request header a proof travels in.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The response header a server nonce travels in.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// What a resource's challenge names as the algorithms a proof may use.
const ALGORITHMS: &str = "ES256 EdDSA";

/// The request a proof must name: its method and path (the origin is the server's own).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a Method,
    pub path: &'a str,
}

/// [`Target`] as an extractor, for handlers: the method, and the path as the client sent it
/// (routers nested under `/api` see only their own part of it).
///
/// Every device call takes one, and few carry a proof: the URI is shared, not copied (its bytes
/// are reference-counted), so the common call pays no allocation for it.
#[derive(Debug, Clone)]
pub struct RequestTarget {
    pub method: Method,
    pub uri: axum::http::Uri,
}

impl RequestTarget {
    pub fn target(&self) -> Target<'_> {
        Target { method: &self.method, path: self.uri.path() }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestTarget {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
        Ok(Self { method: parts.method.clone(), uri })
    }
}

/// The one `DPoP` header a request carries, if any. Two are refused: which one would count?
pub fn presented(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut proofs = headers.get_all(DPOP).iter();
    match (proofs.next(), proofs.next()) {
        (None, _) => Ok(None),
        (Some(proof), None) => proof
            .to_str()
            .map(Some)
            .map_err(|_| refused(&ProofRejection::Malformed, Reason::DpopProofInvalid)),
        (Some(_), Some(_)) => {
            Err(ApiError::refused(Reason::DpopProofInvalid, "send one DPoP header, not several"))
        }
    }
}

/// The key nonces are derived from.
fn nonce_key(state: &AppState) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    derived_key(state, "tokenlab DPoP nonce key")
}

/// A key for one purpose (`label`), derived from the refresh-derivation key every instance shares:
/// what it makes (nonces, challenges) reveals nothing of that key, and rotating that key renews
/// them on every instance.
pub(crate) fn derived_key(state: &AppState, label: &str) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let key = Zeroizing::new(state.keys.hmac_key()?);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(ApiError::internal)?;
    mac.update(label.as_bytes());
    Ok(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
}

/// The nonce a proof should carry from now on, as the `DPoP-Nonce` header; `None` when this
/// server does not ask for nonces.
pub fn current_nonce(state: &AppState) -> Result<Option<(HeaderName, HeaderValue)>, ApiError> {
    if state.settings.dpop_nonces == DpopNonces::Off {
        return Ok(None);
    }
    let nonce = tokenlab_core::dpop::nonce(&nonce_key(state)?, state.clock.now());
    let value = HeaderValue::from_str(&nonce).map_err(ApiError::internal)?;
    Ok(Some((DPOP_NONCE, value)))
}

/// Accepts `proof` for `target`: signed by a public ES256 or EdDSA key in its own header, naming
/// this method and URL, made within the window on the server's clock, carrying the hash of
/// `access_token` when there is one and the current nonce when nonces are required, signed by
/// the key `bound_to` names when that is given, and never accepted before — by any instance.
///
/// A refusal carries its reason: `use_dpop_nonce` (with the nonce to use), `dpop_proof_replayed`,
/// or `dpop_proof_invalid` with what was wrong.
pub async fn accept(
    state: &AppState,
    proof: &str,
    target: Target<'_>,
    access_token: Option<&str>,
    bound_to: Option<&str>,
) -> Result<VerifiedProof, ApiError> {
    let now = state.clock.now();
    let key = match state.settings.dpop_nonces {
        DpopNonces::Required => Some(nonce_key(state)?),
        DpopNonces::Off => None,
    };
    let origins: Vec<&str> = state.allowed_origins.iter().map(String::as_str).collect();
    let request = ProofContext {
        method: target.method.as_str(),
        origins: &origins,
        path: target.path,
        access_token,
        nonce: key.as_deref().map_or(NonceRule::None, |key| NonceRule::Required { key }),
    };
    let verified = verify_proof(proof, &request, now).map_err(|rejection| match rejection {
        ProofRejection::UseNonce => {
            let refusal = refused(&rejection, Reason::UseDpopNonce);
            match current_nonce(state) {
                Ok(Some((name, value))) => refusal.with_header(name, value),
                Ok(None) => refusal,
                Err(fault) => fault,
            }
        }
        _ => refused(&rejection, Reason::DpopProofInvalid),
    })?;
    if bound_to.is_some_and(|jkt| jkt != verified.jkt) {
        return Err(refused(&ProofRejection::WrongKey, Reason::DpopProofInvalid));
    }
    // Kept until the proof's iat leaves the window: after that it is refused as too old anyway.
    let useless_after = tokenlab_core::Timestamp::from_unix_timestamp(verified.claims.iat)
        .map_err(ApiError::internal)?
        + PROOF_MAX_AGE;
    let proof_hash = storage_hash(&format!("{}.{}", verified.jkt, verified.claims.jti));
    let first_use = state
        .session_store
        .record_proof_once(&state.db, &proof_hash, useless_after.max(now), now)
        .await?;
    if !first_use {
        return Err(ApiError::refused(
            Reason::DpopProofReplayed,
            "this DPoP proof was already used; sign a fresh one",
        ));
    }
    Ok(verified)
}

fn refused(rejection: &ProofRejection, reason: Reason) -> ApiError {
    ApiError::refused(reason, rejection.to_string())
}

/// A resource's refusal of a DPoP-bound request, with the challenge RFC 9449 §7.1 asks for:
/// `WWW-Authenticate: DPoP`, the algorithms accepted, and the error (`use_dpop_nonce` where the
/// nonce was missing, else `invalid_token` or `invalid_dpop_proof`).
pub fn challenged(err: ApiError) -> ApiError {
    let error = match err.reason() {
        Reason::UseDpopNonce => "use_dpop_nonce",
        Reason::DpopProofInvalid | Reason::DpopProofReplayed => "invalid_dpop_proof",
        Reason::DatabaseUnavailable | Reason::SessionStoreUnavailable | Reason::Internal => {
            return err;
        }
        _ => "invalid_token",
    };
    let challenge = format!("DPoP algs=\"{ALGORITHMS}\", error=\"{error}\"");
    match HeaderValue::from_str(&challenge) {
        Ok(value) => err.with_header(header::WWW_AUTHENTICATE, value),
        Err(_) => err,
    }
}
