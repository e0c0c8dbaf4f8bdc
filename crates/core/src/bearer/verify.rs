//! The access-token check itself, minus the clock and the revocation list: what a resource server
//! verifies from the token alone. The server runs it on every bearer request it has not cached;
//! the fuzz target `access_token` (`fuzz/`) runs it on whatever libFuzzer makes up.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::bearer::LEEWAY;
use crate::wire::AccessClaims;

/// The audience every access token is minted for and checked against.
pub const AUDIENCE: &str = "tokenlab-api";

/// Why a token was refused, in words a client can be shown (`error_description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not three base64url parts with a JSON header.
    Malformed,
    /// Any `alg` but EdDSA: `none`, and HMAC keyed with a public key, are the classic forgeries.
    AlgorithmNotAccepted,
    NoKid,
    /// No key of ours, or one retired since.
    UnknownKid,
    /// The signature, a claim missing or mistyped, or `iss`/`aud` not ours.
    Rejected(String),
}

impl std::fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed token"),
            Self::AlgorithmNotAccepted => f.write_str("algorithm not accepted"),
            Self::NoKid => f.write_str("no kid"),
            Self::UnknownKid => f.write_str("unknown or retired kid"),
            Self::Rejected(why) => write!(f, "rejected: {why}"),
        }
    }
}

/// Verifies `token`: one algorithm (EdDSA), a `kid` that `key_for` knows, the Ed25519 signature,
/// every registered claim present and well-typed (and `sid`, which [`AccessClaims`] requires), `iss`
/// equal to `issuer` and `aud` to [`AUDIENCE`]. Not the time claims: they depend on when the token
/// is used, so the caller checks them on its injected clock (`check_time_claims`); the library
/// would read the system's. Answers the `kid` beside the claims.
pub fn verify_access_token(
    token: &str,
    issuer: &str,
    key_for: impl FnOnce(&str) -> Option<DecodingKey>,
) -> Result<(String, AccessClaims), TokenRejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenRejection::AlgorithmNotAccepted);
    }
    let kid = header.kid.ok_or(TokenRejection::NoKid)?;
    let key = key_for(&kid).ok_or(TokenRejection::UnknownKid)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = LEEWAY.whole_seconds().unsigned_abs();
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["iss", "aud", "sub", "exp", "nbf"]);
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .map_err(|e| TokenRejection::Rejected(e.to_string()))?;
    Ok((kid, data.claims))
}
