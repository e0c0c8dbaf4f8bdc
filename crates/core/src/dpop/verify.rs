//! The signature half of a proof's check: the header read by hand (so that a private key in `jwk`
//! is seen, not silently dropped), the key built from the header's own `jwk`, the signature checked
//! with exactly the algorithm that key signs with, then [`check_claims`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{Jwk, PROOF_TYPE, ProofClaims, ProofContext, ProofKey, ProofRejection, check_claims};
use crate::Timestamp;

/// A proof's JOSE header (RFC 9449 §4.2).
#[derive(Debug, Clone, Deserialize)]
pub struct ProofHeader {
    pub typ: Option<String>,
    pub alg: String,
    pub jwk: Option<Jwk>,
}

/// A proof that verified: the thumbprint of the key that signed it (what a bound token or device
/// is compared with) and its claims (the `jti` goes to the replay store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    pub jkt: String,
    pub claims: ProofClaims,
}

/// Verifies a `DPoP` header's proof for `request` at `now`: `typ` `dpop+jwt`; a public P-256 or
/// Ed25519 `jwk`; `alg` the one that key signs with (ES256 or EdDSA, never `none` or a MAC); the
/// signature; then the claims ([`check_claims`]). Whether the key is the *right* one (the token's
/// `cnf.jkt`, the device's registered key) and whether the `jti` was seen are the caller's.
pub fn verify_proof(
    proof: &str,
    request: &ProofContext<'_>,
    now: Timestamp,
) -> Result<VerifiedProof, ProofRejection> {
    let header: ProofHeader = jose_header(proof)?;
    // Media types compare case-insensitively (RFC 7515 §4.1.9).
    if !header.typ.is_some_and(|typ| typ.eq_ignore_ascii_case(PROOF_TYPE)) {
        return Err(ProofRejection::NotAProof);
    }
    let jwk = header.jwk.ok_or(ProofRejection::KeyNotAccepted)?;
    let kind = jwk.proof_key()?;
    if header.alg != kind.alg() {
        return Err(ProofRejection::AlgorithmNotAccepted);
    }
    let claims: ProofClaims = signed_claims(proof, &jwk, kind)?;
    check_claims(&claims, request, now)?;
    Ok(VerifiedProof { jkt: jwk.thumbprint()?, claims })
}

/// The JOSE header of a compact JWS (three parts), read by hand rather than by the JWT library, so
/// that every member the caller's type names is seen (a private key in `jwk` is refused, not
/// silently dropped). Shared by DPoP proofs and DBSC answers.
pub(crate) fn jose_header<T: serde::de::DeserializeOwned>(
    token: &str,
) -> Result<T, ProofRejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofRejection::Malformed);
    };
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| ProofRejection::Malformed)?;
    serde_json::from_slice(&header).map_err(|_| ProofRejection::Malformed)
}

/// The claims of `token` if it is signed by `jwk`, a key of kind `kind`, with exactly the algorithm
/// that kind signs with. The header's other members are the caller's to judge: a DPoP proof's
/// (`typ`, its own `jwk`) above, a DBSC proof's in `crate::dbsc`.
pub(crate) fn signed_claims<T: serde::de::DeserializeOwned>(
    token: &str,
    jwk: &Jwk,
    kind: ProofKey,
) -> Result<T, ProofRejection> {
    let (algorithm, key) = match kind {
        ProofKey::Es256 => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(
                jwk.x.as_deref().unwrap_or_default(),
                jwk.y.as_deref().unwrap_or_default(),
            ),
        ),
        ProofKey::EdDsa => (
            Algorithm::EdDSA,
            DecodingKey::from_ed_components(jwk.x.as_deref().unwrap_or_default()),
        ),
    };
    let key = key.map_err(|_| ProofRejection::KeyNotAccepted)?;
    let mut validation = Validation::new(algorithm);
    // A proof has no `exp`, `aud` or `iss`: its freshness is the caller's (a DPoP proof's `iat`
    // on the server's clock, a DBSC proof's challenge).
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(token, &key, &validation).map(|data| data.claims).map_err(|e| match e
        .kind()
    {
        ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey => ProofRejection::BadSignature,
        _ => ProofRejection::Malformed,
    })
}
