use time::macros::datetime;

use super::*;

const KEY: &[u8] = b"the instances' shared key";
const T0: Timestamp = datetime!(2026-12-02 10:00 UTC);

#[test]
fn a_challenge_names_its_session_its_purpose_and_its_time() {
    let issued = challenge(KEY, Purpose::Registration, "handle-1", &[1; 16], T0);
    let cases = [
        ("as issued", KEY, Purpose::Registration, "handle-1", T0, true),
        ("the next period", KEY, Purpose::Registration, "handle-1", T0 + CHALLENGE_PERIOD, true),
        (
            "two periods on",
            KEY,
            Purpose::Registration,
            "handle-1",
            T0 + CHALLENGE_PERIOD * 2,
            false,
        ),
        ("another session", KEY, Purpose::Registration, "handle-2", T0, false),
        ("for a refresh", KEY, Purpose::Refresh, "handle-1", T0, false),
        ("another key", b"another key".as_slice(), Purpose::Registration, "handle-1", T0, false),
    ];
    for (what, key, purpose, session, at, valid) in cases {
        assert_eq!(challenge_is_valid(key, purpose, session, &issued, at), valid, "{what}");
    }
    // Each challenge is new; its random part cannot be swapped under another's MAC.
    let other = challenge(KEY, Purpose::Registration, "handle-1", &[2; 16], T0);
    assert_ne!(issued, other);
    let (random, _) = issued.split_once('.').unwrap();
    let (_, mac) = other.split_once('.').unwrap();
    let spliced = format!("{random}.{mac}");
    for forged in ["made-up", "", ".", spliced.as_str()] {
        assert!(
            !challenge_is_valid(KEY, Purpose::Registration, "handle-1", forged, T0),
            "{forged:?}"
        );
    }
}

#[test]
fn headers_are_written_as_the_browser_reads_them() {
    assert_eq!(
        registration_header("/api/session/dbsc/registration", "c1"),
        r#"(ES256);path="/api/session/dbsc/registration";challenge="c1""#
    );
    assert_eq!(challenge_header("c2", "s1"), r#""c2";id="s1""#);
}

#[cfg(feature = "jwt")]
mod jwts {
    use jsonwebtoken::Algorithm;
    use serde_json::{Value, json};

    use super::*;
    use crate::dpop::{Jwk, ProofRejection};
    use crate::test_jws::{p256_jwk, p256_key, sign};

    fn ed25519_key() -> jsonwebtoken::EncodingKey {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes())
    }

    fn registration(header: &Value) -> String {
        sign(header, &json!({"jti": "c1"}), &p256_key(), Algorithm::ES256)
    }

    /// What Chromium sent in the spike: `alg`, the key, `typ`; the challenge as `jti`.
    fn browser_header() -> Value {
        json!({"alg": "ES256", "jwk": p256_jwk(), "typ": "dbsc+jwt"})
    }

    #[test]
    fn a_registration_carries_the_key_it_is_signed_by() {
        let jwk: Jwk = serde_json::from_value(p256_jwk()).unwrap();
        let mut no_typ = browser_header();
        no_typ.as_object_mut().unwrap().remove("typ");
        let mut no_key = browser_header();
        no_key.as_object_mut().unwrap().remove("jwk");
        let mut other_key = browser_header();
        other_key["jwk"]["x"] = json!("FaOFwif1poyVRzLyM6YlggDmRsSM_l_bY2EeKX5zFkg");
        let mut ed_key = browser_header();
        ed_key["jwk"] = json!({"kty": "OKP", "crv": "Ed25519", "x": "O2nx0yZWBpgSJdxEqRUfa8M4kmF7dgJrGBFFCVmbTyY"});
        type Verdict = Result<(Jwk, String), ProofRejection>;
        let cases: Vec<(&str, String, Verdict)> = vec![
            ("as Chromium sends it", registration(&browser_header()), Ok((jwk, "c1".to_owned()))),
            ("no typ", registration(&no_typ), Err(ProofRejection::NotAProof)),
            ("no key", registration(&no_key), Err(ProofRejection::KeyNotAccepted)),
            (
                "another key than the signer",
                registration(&other_key),
                Err(ProofRejection::BadSignature),
            ),
            ("an Ed25519 key", registration(&ed_key), Err(ProofRejection::KeyNotAccepted)),
            ("not a JWT", "a.b".to_owned(), Err(ProofRejection::Malformed)),
        ];
        for (what, token, expected) in cases {
            assert_eq!(verify_registration(&token), expected, "{what}");
        }
    }

    #[test]
    fn a_refresh_counts_only_if_the_registered_key_signed_it() {
        let registered: Jwk = serde_json::from_value(p256_jwk()).unwrap();
        let header = json!({"alg": "ES256", "typ": "dbsc+jwt"});
        let by_key = sign(&header, &json!({"jti": "c2"}), &p256_key(), Algorithm::ES256);
        let eddsa = json!({"alg": "EdDSA", "typ": "dbsc+jwt"});
        let by_other = sign(&eddsa, &json!({"jti": "c2"}), &ed25519_key(), Algorithm::EdDSA);
        // A key in the header does not change whose signature counts.
        let mut claiming = header.clone();
        claiming["jwk"] = json!({"kty": "OKP", "crv": "Ed25519", "x": "x"});
        let claiming_other = sign(&claiming, &json!({"jti": "c2"}), &p256_key(), Algorithm::ES256);
        assert_eq!(verify_refresh(&by_key, &registered), Ok("c2".to_owned()));
        assert_eq!(verify_refresh(&claiming_other, &registered), Ok("c2".to_owned()));
        assert_eq!(
            verify_refresh(&by_other, &registered),
            Err(ProofRejection::AlgorithmNotAccepted)
        );
        let forged = format!("{}.{}", &by_key[..by_key.rfind('.').unwrap()], "AAAA");
        assert_eq!(verify_refresh(&forged, &registered), Err(ProofRejection::BadSignature));
    }
}
