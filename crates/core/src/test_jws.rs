//! For tests: a JWS over any header and claims, whatever the header says, so that a test can make
//! the tokens and proofs an attacker would (another `alg`, a missing `kid`, a key in the header).
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// `header` and `claims` as a compact JWS signed by `key` with `algorithm`.
pub fn sign(header: &Value, claims: &Value, key: &EncodingKey, algorithm: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, algorithm).unwrap();
    format!("{message}.{signature}")
}

/// A P-256 key made for these tests with `openssl ecparam -name prime256v1 -genkey`; nothing else
/// uses it.
const P256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjlUT7evN7ud511St
mzrIud9xGSHVb3sZhiC0D0xVeGOhRANCAAQ7afHTJlYGmBIl3ESpFR9rwziSYXt2
AmsYEUUJWZtPJgG+veL/RCBGMBVLCjzxqkhZICL2gUHJEsA9shyyVNBX
-----END PRIVATE KEY-----";

/// The test P-256 key, to sign with (ES256).
pub fn p256_key() -> EncodingKey {
    let body: String = P256_PEM.lines().filter(|line| !line.starts_with("-----")).collect();
    EncodingKey::from_ec_der(&base64::engine::general_purpose::STANDARD.decode(body).unwrap())
}

/// Its public half, as a JWK.
pub fn p256_jwk() -> Value {
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": "O2nx0yZWBpgSJdxEqRUfa8M4kmF7dgJrGBFFCVmbTyY",
        "y": "Ab694v9EIEYwFUsKPPGqSFkgIvaBQckSwD2yHLJU0Fc",
    })
}
