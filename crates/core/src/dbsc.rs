//! Beyond the article, the last rung: Device Bound Session Credentials (the W3C draft Chrome
//! ships). The browser itself binds a server session to a key it generates and keeps out of every
//! page's reach. The server asks for it with `Secure-Session-Registration` at login; the browser
//! posts a JWT signed by the new key (its public half in the header, the server's challenge as
//! `jti`); from then on the session needs a short-lived cookie too, which only the key can renew:
//! when it expires the browser posts to the refresh URL, is challenged, and answers with a JWT
//! signed by the same key. A copied session cookie lasts as long as the copied short-lived one.
//!
//! This module holds what is decided without I/O: the headers' forms, the challenges (a random
//! part under a MAC of the purpose, the session and the time, so any instance recognises any
//! instance's without storing it; that each is answered once is the server's replay store's), and,
//! with the `jwt` feature, the check of the browser's JWTs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use time::Duration;

use crate::Timestamp;

/// The response header that asks the browser to bind the session (on login).
pub const REGISTRATION_HEADER: &str = "secure-session-registration";
/// The request header carrying the browser's signed answer.
pub const RESPONSE_HEADER: &str = "secure-session-response";
/// The response header of a refresh that wants a proof first.
pub const CHALLENGE_HEADER: &str = "secure-session-challenge";
/// The request header naming the bound session a refresh is for.
pub const SESSION_ID_HEADER: &str = "sec-secure-session-id";

/// The `typ` of the browser's JWTs.
pub const PROOF_TYPE: &str = "dbsc+jwt";

/// How long the short-lived bound cookie lives: a stolen copy is worth this much.
pub const BOUND_COOKIE_LIFETIME: Duration = Duration::minutes(10);

/// A challenge is valid in the period it was issued in and the next one.
pub const CHALLENGE_PERIOD: Duration = Duration::minutes(5);

/// What a challenge is for: one session's registration, or its refreshes. A challenge for one is
/// never accepted for the other, nor for another session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Registration,
    Refresh,
}

impl Purpose {
    const fn label(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::Refresh => "refresh",
        }
    }
}

/// Bytes of a challenge's random part.
pub const CHALLENGE_RANDOM_BYTES: usize = 16;

fn mac_for_period(
    key: &[u8],
    purpose: Purpose,
    session: &str,
    random: &str,
    period: i64,
) -> String {
    // HMAC takes a key of any length, so this cannot fail; an empty MAC would never match.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"tokenlab DBSC challenge ");
    mac.update(purpose.label().as_bytes());
    mac.update(&[0]);
    mac.update(session.as_bytes());
    mac.update(&[0]);
    mac.update(random.as_bytes());
    mac.update(&[0]);
    mac.update(&period.to_be_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn period(now: Timestamp) -> i64 {
    now.unix_timestamp().div_euclid(CHALLENGE_PERIOD.whole_seconds())
}

/// A challenge for `purpose` of the session named `session`, issued now: a random part (so that
/// every challenge is new, and an answer can be spent once) and a MAC of it with the purpose, the
/// session and the period under the instances' shared key (so that any instance recognises it
/// without storing it).
pub fn challenge(
    key: &[u8],
    purpose: Purpose,
    session: &str,
    random: &[u8; CHALLENGE_RANDOM_BYTES],
    now: Timestamp,
) -> String {
    let random = URL_SAFE_NO_PAD.encode(random);
    let mac = mac_for_period(key, purpose, session, &random, period(now));
    format!("{random}.{mac}")
}

/// Whether `presented` is a challenge this server issued for `purpose` of `session`, in this
/// period or the one before. That an answer to it was not used before is the caller's to check.
pub fn challenge_is_valid(
    key: &[u8],
    purpose: Purpose,
    session: &str,
    presented: &str,
    now: Timestamp,
) -> bool {
    let Some((random, mac)) = presented.split_once('.') else { return false };
    let current = period(now);
    [current, current.saturating_sub(1)].into_iter().any(|p| {
        let expected = mac_for_period(key, purpose, session, random, p);
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    })
}

/// `Secure-Session-Registration`'s value: the algorithm offered, where to register, and the
/// challenge to sign.
pub fn registration_header(path: &str, challenge: &str) -> String {
    format!("(ES256);path=\"{path}\";challenge=\"{challenge}\"")
}

/// `Secure-Session-Challenge`'s value for a refresh of session `id`.
pub fn challenge_header(challenge: &str, id: &str) -> String {
    format!("\"{challenge}\";id=\"{id}\"")
}

#[cfg(feature = "jwt")]
mod verify {
    use serde::Deserialize;

    use super::PROOF_TYPE;
    use crate::dpop::{Jwk, ProofKey, ProofRejection, jose_header, signed_claims};

    #[derive(Deserialize)]
    struct Header {
        typ: Option<String>,
        alg: String,
        jwk: Option<Jwk>,
    }

    #[derive(Deserialize)]
    struct Claims {
        jti: String,
    }

    fn header(token: &str) -> Result<Header, ProofRejection> {
        let header: Header = jose_header(token)?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYPE)) {
            return Err(ProofRejection::NotAProof);
        }
        Ok(header)
    }

    /// The key a registration JWT carries and was signed by, and the challenge it answers (`jti`).
    /// Only ES256 is offered (the registration header says so), so only a public P-256 key passes.
    pub fn verify_registration(token: &str) -> Result<(Jwk, String), ProofRejection> {
        let header = header(token)?;
        let jwk = header.jwk.ok_or(ProofRejection::KeyNotAccepted)?;
        if jwk.proof_key()? != ProofKey::Es256 {
            return Err(ProofRejection::KeyNotAccepted);
        }
        if header.alg != ProofKey::Es256.alg() {
            return Err(ProofRejection::AlgorithmNotAccepted);
        }
        let claims: Claims = signed_claims(token, &jwk, ProofKey::Es256)?;
        Ok((jwk, claims.jti))
    }

    /// The challenge a refresh JWT answers, if `registered` (the session's key) signed it. A key
    /// in the header, if any, is ignored: only the registered one counts.
    pub fn verify_refresh(token: &str, registered: &Jwk) -> Result<String, ProofRejection> {
        let header = header(token)?;
        if header.alg != ProofKey::Es256.alg() {
            return Err(ProofRejection::AlgorithmNotAccepted);
        }
        let claims: Claims = signed_claims(token, registered, ProofKey::Es256)?;
        Ok(claims.jti)
    }
}

#[cfg(feature = "jwt")]
pub use verify::{verify_refresh, verify_registration};

#[cfg(test)]
mod tests;
