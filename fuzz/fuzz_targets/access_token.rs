//! The access-token check (`tokenlab_core::bearer::verify_access_token`, what the server runs on
//! every `Authorization: Bearer` it has not cached) and the time claims after it.
//!
//! The first byte chooses how the rest is used:
//! - even: the rest is the token as a client sent it;
//! - odd: the rest is `header JSON` `\n` `claims JSON`, which this target signs with its key, so
//!   that the claims reach the decoding behind the signature check, as only our own tokens do.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use libfuzzer_sys::fuzz_target;
use tokenlab_core::Timestamp;
use tokenlab_core::bearer::{AUDIENCE, check_time_claims, verify_access_token};

const ISSUER: &str = "https://lab.example";
const KID: &str = "fuzz-key";

struct Keys {
    signing: EncodingKey,
    verifying: DecodingKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let der = key.to_pkcs8_der().expect("a fixed seed encodes");
    Keys {
        signing: EncodingKey::from_ed_der(der.as_bytes()),
        verifying: DecodingKey::from_ed_der(&key.verifying_key().to_bytes()),
    }
});

fn signed(header: &[u8], claims: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &KEYS.signing, Algorithm::EdDSA)
        .expect("Ed25519 signs any message");
    format!("{message}.{signature}")
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let token = if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else { return };
        token.to_owned()
    } else {
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (header, claims) = rest.split_at(split);
        signed(header, claims.get(1..).unwrap_or_default())
    };
    let key_for = |kid: &str| (kid == KID).then(|| KEYS.verifying.clone());
    if let Ok((kid, claims)) = verify_access_token(&token, ISSUER, key_for) {
        // Only a token that names our key, our issuer and our audience, signed EdDSA, gets here.
        assert_eq!(kid, KID);
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        let header = jsonwebtoken::decode_header(&token).expect("verified, so it decodes");
        assert_eq!(header.alg, Algorithm::EdDSA);
        // Whatever the claims say, judging them on a clock never panics (nor overflows).
        for now in [claims.iat, claims.nbf, claims.exp, 0] {
            if let Ok(now) = Timestamp::from_unix_timestamp(now) {
                let _ = check_time_claims(claims.iat, claims.nbf, claims.exp, now);
            }
        }
    }
});
