//! Beyond the article: a token bound to a key the device holds (DPoP, RFC 9449).
//!
//! The article's device token, and every bearer token, is a secret the client *sends*: whoever
//! copies it is the device. A bound token is worthless without a private key that never leaves the
//! device: every request carries a fresh *proof*, a small JWT signed by that key, naming the
//! request's method and URL and the moment it was made. The server remembers only the key's
//! thumbprint (RFC 7638).
//!
//! This module holds the rules a proof is judged by, free of I/O: the key's thumbprint, the
//! normalised request URL (`htu`), the time window, the access-token hash (`ath`), and the server
//! nonces, derived from a key and the time so that every instance accepts every instance's
//! nonce without sharing state. Checking the signature is `verify.rs` (the `jwt` feature); which
//! `jti`s were seen is the server's replay store.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::Duration;

use crate::Timestamp;

#[cfg(feature = "jwt")]
mod verify;
#[cfg(feature = "jwt")]
pub use verify::{ProofHeader, VerifiedProof, verify_proof};
#[cfg(feature = "jwt")]
pub(crate) use verify::{jose_header, signed_claims};

/// The `typ` of every proof (RFC 9449 §4.2): a JWT of another kind is never taken for one.
pub const PROOF_TYPE: &str = "dpop+jwt";

/// How old a proof may be when it arrives: long enough for a slow network, short enough that a
/// captured proof is soon useless even where the replay store would not catch it.
pub const PROOF_MAX_AGE: Duration = Duration::seconds(60);

/// How far ahead of the server's clock a proof's `iat` may be: client clocks run fast too.
pub const PROOF_MAX_AHEAD: Duration = Duration::seconds(5);

/// The longest `jti` accepted: the replay store keeps each one until its `iat` is
/// [`PROOF_MAX_AGE`] old (at most that plus [`PROOF_MAX_AHEAD`]), so its size is bounded by the
/// request rate times that.
pub const JTI_MAX_CHARS: usize = 128;

/// A server nonce is valid in the period it was issued in and the next one: between one and two
/// periods, whenever it was issued.
pub const NONCE_PERIOD: Duration = Duration::minutes(5);

/// Bytes of a P-256 coordinate and of an Ed25519 public key alike.
const COORDINATE_BYTES: usize = 32;

/// A public key as a proof's header carries it (RFC 7517), with the members the thumbprint and
/// the signature check read. `d` is read only to refuse a header that carries a private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing)]
    pub d: Option<String>,
}

/// The kinds of key a proof may be signed with, and the JWS algorithm each signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofKey {
    /// ECDSA on P-256: what WebCrypto makes non-extractable in every browser.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl ProofKey {
    /// The `alg` a proof by this key names.
    pub const fn alg(self) -> &'static str {
        match self {
            ProofKey::Es256 => "ES256",
            ProofKey::EdDsa => "EdDSA",
        }
    }
}

/// Why a key, or a proof, is not accepted. Each is a refusal a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofRejection {
    /// Not a JWT, or its header or claims are not the JSON a proof has.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    NotAProof,
    /// `alg` is not one this server verifies, or not the one the key signs with.
    AlgorithmNotAccepted,
    /// The `jwk` is missing, holds a private key, or is of a kind or curve not accepted.
    KeyNotAccepted,
    /// The signature does not verify with the key the header carries.
    BadSignature,
    /// The key is not the one the token or device is bound to.
    WrongKey,
    /// `htm` is not the request's method.
    WrongMethod,
    /// `htu` is not the request's URL (query and fragment aside, after normalisation).
    WrongUrl,
    /// `iat` is older than [`PROOF_MAX_AGE`].
    TooOld,
    /// `iat` is more than [`PROOF_MAX_AHEAD`] in the server's future.
    FromTheFuture,
    /// `jti` is missing, empty or longer than [`JTI_MAX_CHARS`].
    BadJti,
    /// The request carries an access token and the proof no `ath`, or one of another token.
    WrongAccessTokenHash,
    /// The server asks for a nonce and the proof has none, or one no longer (or never) valid: the
    /// client retries with the nonce the answer carries (`use_dpop_nonce`, RFC 9449 §8).
    UseNonce,
}

impl std::fmt::Display for ProofRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the DPoP proof is not a well-formed JWT",
            Self::NotAProof => "the DPoP proof's typ is not dpop+jwt",
            Self::AlgorithmNotAccepted => "the DPoP proof's alg is not ES256 or EdDSA for its key",
            Self::KeyNotAccepted => "the DPoP proof's jwk is not a public P-256 or Ed25519 key",
            Self::BadSignature => "the DPoP proof's signature does not verify with its jwk",
            Self::WrongKey => "the DPoP proof is signed by another key than the one bound",
            Self::WrongMethod => "the DPoP proof's htm is not this request's method",
            Self::WrongUrl => "the DPoP proof's htu is not this request's URL",
            Self::TooOld => "the DPoP proof's iat is too old",
            Self::FromTheFuture => "the DPoP proof's iat is in the future",
            Self::BadJti => "the DPoP proof's jti is missing or too long",
            Self::WrongAccessTokenHash => "the DPoP proof's ath is not this access token's hash",
            Self::UseNonce => "use the DPoP-Nonce this answer carries",
        })
    }
}

fn is_base64url(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Jwk {
    /// The key's JWK thumbprint (RFC 7638, SHA-256, base64url): the hash of exactly its required
    /// members, in lexicographic order, without whitespace. What a bound token's `cnf.jkt` and a
    /// bound device store instead of the key. RSA keys have one too (the RFC's own example), though
    /// no proof may be signed with one here.
    pub fn thumbprint(&self) -> Result<String, ProofRejection> {
        fn member(value: &Option<String>) -> Result<&str, ProofRejection> {
            value.as_deref().filter(|v| is_base64url(v)).ok_or(ProofRejection::KeyNotAccepted)
        }
        // Every value is base64url or a fixed name, so writing it between quotes is its JSON.
        let canonical = match self.kty.as_str() {
            "EC" => {
                let crv = self.crv.as_deref().filter(|c| *c == "P-256");
                let crv = crv.ok_or(ProofRejection::KeyNotAccepted)?;
                let (x, y) = (member(&self.x)?, member(&self.y)?);
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            "OKP" => {
                let crv = self.crv.as_deref().filter(|c| *c == "Ed25519");
                let crv = crv.ok_or(ProofRejection::KeyNotAccepted)?;
                let x = member(&self.x)?;
                format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#)
            }
            "RSA" => {
                let (e, n) = (member(&self.e)?, member(&self.n)?);
                format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)
            }
            _ => return Err(ProofRejection::KeyNotAccepted),
        };
        Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    /// The kind of proof key this is, if a proof may be signed with it: a public P-256 or Ed25519
    /// key. A `jwk` holding a private key (`d`) is refused outright (RFC 9449 §4.3): a client that
    /// sends its private key has given the binding away.
    ///
    /// The coordinates must also be exactly as long as the curve's (32 bytes each): the JWT
    /// library slices an Ed25519 key's first 32 bytes without checking, so a shorter `x` made it
    /// panic (found by the `dpop_proof` fuzz target).
    pub fn proof_key(&self) -> Result<ProofKey, ProofRejection> {
        if self.d.is_some() {
            return Err(ProofRejection::KeyNotAccepted);
        }
        self.thumbprint()?;
        let coordinate = |value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .is_some_and(|bytes| bytes.len() == COORDINATE_BYTES)
        };
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) if coordinate(&self.x) && coordinate(&self.y) => {
                Ok(ProofKey::Es256)
            }
            ("OKP", Some("Ed25519")) if coordinate(&self.x) => Ok(ProofKey::EdDsa),
            _ => Err(ProofRejection::KeyNotAccepted),
        }
    }
}

/// The claims of a proof (RFC 9449 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofClaims {
    pub jti: String,
    pub htm: String,
    pub htu: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// What the server requires of a proof's nonce.
#[derive(Debug, Clone, Copy)]
pub enum NonceRule<'a> {
    /// No nonce is asked for; one sent anyway is ignored.
    None,
    /// A nonce derived from this key ([`nonce`]), still valid.
    Required { key: &'a [u8] },
}

/// The request a proof must describe.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The request's method, as sent (`GET`, `POST`).
    pub method: &'a str,
    /// The origins the server is reached at: its public origin (and, serving on a loopback
    /// address without one, the loopback names of the same port). A proof names one of them.
    pub origins: &'a [&'a str],
    /// The request's path, without the query.
    pub path: &'a str,
    /// The access token the request presents, when it presents one: the proof must carry its
    /// hash (`ath`).
    pub access_token: Option<&'a str>,
    pub nonce: NonceRule<'a>,
}

/// The URL a proof's `htu` is compared as (RFC 9449 §4.3): the query and fragment dropped, then
/// normalised as the URL standard parses it — scheme and host in lower case, the scheme's default
/// port dropped, an empty path made `/`, dot segments resolved — so that two spellings of one URL
/// compare equal and no two URLs do. `None` for what is not an absolute http(s) URL, or one with
/// credentials in it.
pub fn normalize_htu(text: &str) -> Option<String> {
    let mut url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// `ath`: the base64url SHA-256 of the access token's ASCII text (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// Judges a proof's claims against the request it came with, at `now` on the server's clock. The
/// signature and the key are [`verify_proof`]'s; the `jti` seen before is the replay store's.
pub fn check_claims(
    claims: &ProofClaims,
    request: &ProofContext<'_>,
    now: Timestamp,
) -> Result<(), ProofRejection> {
    if claims.jti.is_empty() || claims.jti.chars().count() > JTI_MAX_CHARS {
        return Err(ProofRejection::BadJti);
    }
    // Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
    if claims.htm != request.method {
        return Err(ProofRejection::WrongMethod);
    }
    let presented = normalize_htu(&claims.htu).ok_or(ProofRejection::WrongUrl)?;
    let names_this_request = request.origins.iter().any(|origin| {
        normalize_htu(&format!("{origin}{}", request.path)).is_some_and(|url| url == presented)
    });
    if !names_this_request {
        return Err(ProofRejection::WrongUrl);
    }
    let now_seconds = now.unix_timestamp();
    if claims.iat > now_seconds.saturating_add(PROOF_MAX_AHEAD.whole_seconds()) {
        return Err(ProofRejection::FromTheFuture);
    }
    if claims.iat < now_seconds.saturating_sub(PROOF_MAX_AGE.whole_seconds()) {
        return Err(ProofRejection::TooOld);
    }
    if let Some(token) = request.access_token
        && claims.ath.as_deref() != Some(access_token_hash(token).as_str())
    {
        return Err(ProofRejection::WrongAccessTokenHash);
    }
    if let NonceRule::Required { key } = request.nonce {
        let valid = claims.nonce.as_deref().is_some_and(|n| nonce_is_valid(key, n, now));
        if !valid {
            return Err(ProofRejection::UseNonce);
        }
    }
    Ok(())
}

/// Why a credential's binding and the request's proof do not go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingMismatch {
    /// Bound to one key, proved by another.
    OtherKey,
    /// Bound to a key, and no proof came.
    ProofMissing,
    /// Not bound, and a proof came: refused rather than silently left a bearer credential, so a
    /// client never believes a credential is bound when it is not (nor gets one bound halfway
    /// through its life).
    NotBound,
}

impl std::fmt::Display for BindingMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OtherKey => "this credential is bound to another key than the DPoP proof's",
            Self::ProofMissing => {
                "this credential is bound to a key: send a DPoP proof signed by it"
            }
            Self::NotBound => "this credential is not bound to a key: send it without a DPoP proof",
        })
    }
}

/// Whether a credential bound to `bound_to` (a key's thumbprint, or `None` for a bearer one) may be
/// used with a request whose checked proof was signed by `proved_by` (or that carried none): a
/// bound credential only with a proof by its own key, a bearer one only without a proof (RFC 9449
/// §5 for refresh tokens).
pub fn check_binding(
    bound_to: Option<&str>,
    proved_by: Option<&str>,
) -> Result<(), BindingMismatch> {
    match (bound_to, proved_by) {
        (None, None) => Ok(()),
        (Some(bound), Some(proved)) if bool::from(bound.as_bytes().ct_eq(proved.as_bytes())) => {
            Ok(())
        }
        (Some(_), Some(_)) => Err(BindingMismatch::OtherKey),
        (Some(_), None) => Err(BindingMismatch::ProofMissing),
        (None, Some(_)) => Err(BindingMismatch::NotBound),
    }
}

/// The period `now` falls in, counted from the Unix epoch.
fn nonce_period(now: Timestamp) -> i64 {
    now.unix_timestamp().div_euclid(NONCE_PERIOD.whole_seconds())
}

fn nonce_for_period(key: &[u8], period: i64) -> String {
    // HMAC takes a key of any length, so this cannot fail; an empty MAC would never match.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"tokenlab DPoP nonce ");
    mac.update(&period.to_be_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The nonce a server hands out at `now` (`DPoP-Nonce`): a MAC of the current period under the
/// instances' shared key, so any instance recognises any other's without storing it. It cannot be
/// made before its period begins, which is what stops proofs pre-generated by a script that has
/// since lost the page (RFC 9449 §8, attack (c) of the lab).
pub fn nonce(key: &[u8], now: Timestamp) -> String {
    nonce_for_period(key, nonce_period(now))
}

/// Whether `presented` is a nonce of this period or the one before (valid for one to two
/// [`NONCE_PERIOD`]s after it was handed out). Compared in constant time: a nonce is not a secret
/// once sent, but a timing oracle over the MAC is no help to offer either.
pub fn nonce_is_valid(key: &[u8], presented: &str, now: Timestamp) -> bool {
    let period = nonce_period(now);
    [period, period.saturating_sub(1)].into_iter().any(|p| {
        let expected = nonce_for_period(key, p);
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    })
}

#[cfg(test)]
mod tests;
