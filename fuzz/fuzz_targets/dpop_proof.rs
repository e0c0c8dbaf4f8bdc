//! A `DPoP` header's proof (`tokenlab_core::dpop::verify_proof`): the header read by hand, the key
//! it carries, the signature, then the claims against the request.
//!
//! The first byte chooses how the rest is used, and what the request asks:
//! - bit 0 clear: the rest is the proof as a client sent it; set: the rest is `header JSON` `\n`
//!   `claims JSON`, which this target signs with its Ed25519 key (so that arbitrary headers and
//!   claims get past the signature whenever the header carries that key);
//! - bit 1: the request presents an access token (the proof needs its `ath`);
//! - bit 2: the server asks for a nonce.
//!
//! The same text is also read as a Device Bound Session Credentials answer
//! (`tokenlab_core::dbsc`): as a registration, and as a refresh against a fixed registered key.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use tokenlab_core::Timestamp;
use tokenlab_core::dbsc::{verify_refresh, verify_registration};
use tokenlab_core::dpop::{Jwk, ProofKey};
use tokenlab_core::dpop::{
    NonceRule, PROOF_MAX_AGE, PROOF_MAX_AHEAD, ProofContext, access_token_hash, normalize_htu,
    verify_proof,
};

/// The seeds' `iat` (2026-01-01T00:00:00Z).
const NOW: Timestamp = datetime!(2026-01-01 00:00 UTC);
const ORIGIN: &str = "https://lab.example";
const PATH: &str = "/api/jwt/me";
const URL: &str = "https://lab.example/api/jwt/me";
const ACCESS_TOKEN: &str = "an.access.token";
const NONCE_KEY: &[u8] = b"fuzz nonce key";

static KEY: LazyLock<EncodingKey> = LazyLock::new(|| {
    let der = SigningKey::from_bytes(&[9; 32]).to_pkcs8_der().expect("a fixed seed encodes");
    EncodingKey::from_ed_der(der.as_bytes())
});

/// A registered DBSC key (a P-256 public key) that refreshes are judged against.
static REGISTERED: LazyLock<Jwk> = LazyLock::new(|| Jwk {
    kty: "EC".into(),
    crv: Some("P-256".into()),
    x: Some("O2nx0yZWBpgSJdxEqRUfa8M4kmF7dgJrGBFFCVmbTyY".into()),
    y: Some("Ab694v9EIEYwFUsKPPGqSFkgIvaBQckSwD2yHLJU0Fc".into()),
    n: None,
    e: None,
    d: None,
});

fn signed(header: &[u8], claims: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &KEY, Algorithm::EdDSA)
        .expect("Ed25519 signs any message");
    format!("{message}.{signature}")
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let proof = if mode & 1 == 0 {
        let Ok(proof) = std::str::from_utf8(rest) else { return };
        proof.to_owned()
    } else {
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (header, claims) = rest.split_at(split);
        signed(header, claims.get(1..).unwrap_or_default())
    };
    // Whatever it is, as a DBSC answer it is judged without a panic, and a registration that
    // passes carries a public P-256 key: the only kind the server offers.
    if let Ok((key, _challenge)) = verify_registration(&proof) {
        assert_eq!(key.proof_key(), Ok(ProofKey::Es256));
    }
    let _ = verify_refresh(&proof, &REGISTERED);
    let request = ProofContext {
        method: "GET",
        origins: &[ORIGIN],
        path: PATH,
        access_token: (mode & 2 != 0).then_some(ACCESS_TOKEN),
        nonce: if mode & 4 != 0 { NonceRule::Required { key: NONCE_KEY } } else { NonceRule::None },
    };
    if let Ok(verified) = verify_proof(&proof, &request, NOW) {
        // Whatever verifies describes this request, now, with a thumbprint of 43 base64url
        // characters (a SHA-256).
        let claims = &verified.claims;
        assert_eq!(claims.htm, "GET");
        assert_eq!(normalize_htu(&claims.htu), normalize_htu(URL));
        let now = NOW.unix_timestamp();
        assert!(claims.iat >= now - PROOF_MAX_AGE.whole_seconds());
        assert!(claims.iat <= now + PROOF_MAX_AHEAD.whole_seconds());
        assert!(!claims.jti.is_empty());
        if request.access_token.is_some() {
            assert_eq!(claims.ath.as_deref(), Some(access_token_hash(ACCESS_TOKEN).as_str()));
        }
        assert_eq!(verified.jkt.len(), 43);
        assert!(verified.jkt.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
});
