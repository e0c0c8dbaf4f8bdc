//! A DPoP client for tests (RFC 9449 §4): keys, and the proofs they sign, made the way a browser's
//! WebCrypto key would make them — or an attacker's script, since every claim can be chosen.
#![allow(dead_code)] // Each test binary uses its own part.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokenlab_core::dpop::{Jwk, access_token_hash};

/// A P-256 key made for these tests, as PKCS#8 (WebCrypto's ES256 is the browser's key).
const P256_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjlUT7evN7ud511St\
mzrIud9xGSHVb3sZhiC0D0xVeGOhRANCAAQ7afHTJlYGmBIl3ESpFR9rwziSYXt2AmsYEUUJWZtPJgG+veL/RCBGMBVLCjzx\
qkhZICL2gUHJEsA9shyyVNBX";

/// A key that signs proofs: its public half as a JWK, and the thumbprint a bound token names.
pub struct ProofKey {
    key: EncodingKey,
    algorithm: Algorithm,
    pub jwk: Value,
    pub jkt: String,
}

/// What a proof says beyond its key: the request it names, when it was made, and the optional
/// claims. `jti` is made unique unless the test sets it.
#[derive(Debug, Clone, Default)]
pub struct ProofClaims<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub iat: i64,
    pub access_token: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub jti: Option<&'a str>,
}

impl ProofKey {
    /// An Ed25519 key; each `seed` its own.
    pub fn ed25519(seed: u8) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().expect("an Ed25519 key encodes");
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        Self::new(EncodingKey::from_ed_der(der.as_bytes()), Algorithm::EdDSA, jwk)
    }

    /// The one P-256 key (ES256, what a browser's non-extractable WebCrypto key signs with).
    pub fn p256() -> Self {
        let der = base64::engine::general_purpose::STANDARD.decode(P256_PKCS8).unwrap();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": "O2nx0yZWBpgSJdxEqRUfa8M4kmF7dgJrGBFFCVmbTyY",
            "y": "Ab694v9EIEYwFUsKPPGqSFkgIvaBQckSwD2yHLJU0Fc",
        });
        Self::new(EncodingKey::from_ec_der(&der), Algorithm::ES256, jwk)
    }

    fn new(key: EncodingKey, algorithm: Algorithm, jwk: Value) -> Self {
        let parsed: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let jkt = parsed.thumbprint().unwrap();
        Self { key, algorithm, jwk, jkt }
    }

    /// A proof of `claims`, signed by this key, with the key in its header.
    pub fn proof(&self, claims: &ProofClaims<'_>) -> String {
        let alg = if self.algorithm == Algorithm::ES256 { "ES256" } else { "EdDSA" };
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": self.jwk});
        let mut body = json!({
            "jti": claims.jti.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
            "htm": claims.method,
            "htu": claims.url,
            "iat": claims.iat,
        });
        if let Some(token) = claims.access_token {
            body["ath"] = json!(access_token_hash(token));
        }
        if let Some(nonce) = claims.nonce {
            body["nonce"] = json!(nonce);
        }
        self.sign(&header, &body)
    }

    /// A JWS of any header and claims by this key: the proofs a client would never send.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.algorithm).unwrap();
        format!("{message}.{signature}")
    }
}

/// The claims of a JWT, unverified (a test reads what the server put in a token).
pub fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
