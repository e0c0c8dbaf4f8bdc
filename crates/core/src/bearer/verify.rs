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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use jsonwebtoken::EncodingKey;
    use serde_json::{Value, json};

    use super::*;

    const ISSUER: &str = "https://lab.example";

    fn keys(seed: u8) -> (EncodingKey, DecodingKey) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let der = key.to_pkcs8_der().unwrap();
        (
            EncodingKey::from_ed_der(der.as_bytes()),
            DecodingKey::from_ed_der(&key.verifying_key().to_bytes()),
        )
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "1", "iat": 0, "nbf": 0, "exp": 900,
               "jti": "j", "sid": "s", "preferred_username": "alice"})
    }

    fn without(claim: &str) -> Value {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(claim);
        c
    }

    fn with(claim: &str, value: Value) -> Value {
        let mut c = claims();
        c[claim] = value;
        c
    }

    fn signed(header: &Value, claims: &Value, key: &EncodingKey) -> String {
        crate::test_jws::sign(header, claims, key, Algorithm::EdDSA)
    }

    #[test]
    fn only_our_signature_our_key_and_our_claims_pass() {
        use TokenRejection::*;
        let (ours, verifying) = keys(1);
        let (theirs, _) = keys(2);
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"});
        // The library words `Rejected`; only which refusal it is matters here.
        let rejected = Rejected(String::new());
        let cases = [
            ("good", signed(&header, &claims(), &ours), None),
            ("not a token", "a.b.c".to_owned(), Some(Malformed)),
            (
                "alg none",
                signed(&json!({"alg": "none", "kid": "k1"}), &claims(), &ours),
                Some(Malformed),
            ),
            (
                "alg HS256",
                signed(&json!({"alg": "HS256", "kid": "k1"}), &claims(), &ours),
                Some(AlgorithmNotAccepted),
            ),
            ("no kid", signed(&json!({"alg": "EdDSA"}), &claims(), &ours), Some(NoKid)),
            (
                "another kid",
                signed(&json!({"alg": "EdDSA", "kid": "k2"}), &claims(), &ours),
                Some(UnknownKid),
            ),
            ("another key", signed(&header, &claims(), &theirs), Some(rejected.clone())),
            (
                "their issuer",
                signed(&header, &with("iss", json!("https://evil.example")), &ours),
                Some(rejected.clone()),
            ),
            (
                "their audience",
                signed(&header, &with("aud", json!("other")), &ours),
                Some(rejected.clone()),
            ),
            ("no exp", signed(&header, &without("exp"), &ours), Some(rejected.clone())),
            ("no sid", signed(&header, &without("sid"), &ours), Some(rejected.clone())),
        ];
        for (name, token, refusal) in cases {
            let key_for = |kid: &str| (kid == "k1").then(|| verifying.clone());
            match (verify_access_token(&token, ISSUER, key_for), refusal) {
                (Ok((kid, claims)), None) => {
                    assert_eq!((kid.as_str(), claims.sub.as_str()), ("k1", "1"))
                }
                (Err(got), Some(expected)) => assert_eq!(
                    std::mem::discriminant(&got),
                    std::mem::discriminant(&expected),
                    "{name}: {got}"
                ),
                (got, expected) => panic!("{name}: {got:?}, expected {expected:?}"),
            }
        }
    }
}
