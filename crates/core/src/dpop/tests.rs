use time::macros::datetime;

use super::*;

/// A moment at the start of a nonce period (2026-01-01, a multiple of five minutes).
const T0: Timestamp = datetime!(2026-01-01 00:00 UTC);

/// A JWK's members, as a test writes them.
type Members<'a> = &'a [(&'a str, &'a str)];

fn jwk(members: Members<'_>) -> Jwk {
    let get = |name: &str| members.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
    Jwk {
        kty: get("kty").unwrap_or_default(),
        crv: get("crv"),
        x: get("x"),
        y: get("y"),
        n: get("n"),
        e: get("e"),
        d: get("d"),
    }
}

/// RFC 7638 §3.1's example key.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
/// RFC 9449 §4.1's example proof key, whose thumbprint §6.1 gives.
const RFC9449_X: &str = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs";
const RFC9449_Y: &str = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA";

#[test]
fn thumbprints_are_rfc_7638s() {
    let rsa = [("kty", "RSA"), ("n", RFC7638_N), ("e", "AQAB")];
    let ec = [("kty", "EC"), ("crv", "P-256"), ("x", RFC9449_X), ("y", RFC9449_Y)];
    let cases: [(Members<'_>, Result<&str, ProofRejection>); 7] = [
        (&rsa, Ok("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")),
        (&ec, Ok("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")),
        // Only the required members count: a private half is not part of the thumbprint.
        (
            &[("kty", "EC"), ("crv", "P-256"), ("x", RFC9449_X), ("y", RFC9449_Y), ("d", "AAAA")],
            Ok("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
        ),
        (
            &[("kty", "EC"), ("crv", "P-384"), ("x", RFC9449_X), ("y", RFC9449_Y)],
            Err(ProofRejection::KeyNotAccepted),
        ),
        (&[("kty", "EC"), ("crv", "P-256"), ("x", RFC9449_X)], Err(ProofRejection::KeyNotAccepted)),
        // A member that is not base64url would not be written back as the same JSON.
        (
            &[("kty", "OKP"), ("crv", "Ed25519"), ("x", "a\",\"kty\":\"RSA")],
            Err(ProofRejection::KeyNotAccepted),
        ),
        (&[("kty", "oct"), ("k", "c2VjcmV0")], Err(ProofRejection::KeyNotAccepted)),
    ];
    for (members, expected) in cases {
        let expected = expected.map(str::to_owned);
        assert_eq!(jwk(members).thumbprint(), expected, "{members:?}");
    }
}

#[test]
fn proofs_are_signed_by_public_p256_or_ed25519_keys() {
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let cases: [(Members<'_>, Result<ProofKey, ProofRejection>); 10] = [
        (
            &[("kty", "EC"), ("crv", "P-256"), ("x", RFC9449_X), ("y", RFC9449_Y)],
            Ok(ProofKey::Es256),
        ),
        (&[("kty", "OKP"), ("crv", "Ed25519"), ("x", x)], Ok(ProofKey::EdDsa)),
        // A header carrying the private key has given the binding away.
        (
            &[("kty", "OKP"), ("crv", "Ed25519"), ("x", x), ("d", x)],
            Err(ProofRejection::KeyNotAccepted),
        ),
        (&[("kty", "OKP"), ("crv", "X25519"), ("x", x)], Err(ProofRejection::KeyNotAccepted)),
        // Coordinates of the wrong length: the `dpop_proof` fuzz target's first crash was an
        // Ed25519 `x` of 28 bytes, which the JWT library sliced to 32 without checking.
        (
            &[("kty", "OKP"), ("crv", "Ed25519"), ("x", "_RckOFqgx1tk-3jNYC-h2ZH96_drE8WO1wL9hg")],
            Err(ProofRejection::KeyNotAccepted),
        ),
        (
            &[("kty", "OKP"), ("crv", "Ed25519"), ("x", &x[..40])],
            Err(ProofRejection::KeyNotAccepted),
        ),
        (&[("kty", "OKP"), ("crv", "Ed25519"), ("x", "AAAA")], Err(ProofRejection::KeyNotAccepted)),
        (
            &[("kty", "EC"), ("crv", "P-256"), ("x", RFC9449_X), ("y", &RFC9449_Y[..40])],
            Err(ProofRejection::KeyNotAccepted),
        ),
        (&[("kty", "RSA"), ("n", RFC7638_N), ("e", "AQAB")], Err(ProofRejection::KeyNotAccepted)),
        (
            &[("kty", "EC"), ("crv", "secp256k1"), ("x", RFC9449_X), ("y", RFC9449_Y)],
            Err(ProofRejection::KeyNotAccepted),
        ),
    ];
    for (members, expected) in cases {
        assert_eq!(jwk(members).proof_key(), expected, "{members:?}");
    }
}

#[test]
fn htu_is_compared_without_query_or_fragment_after_normalisation() {
    let cases = [
        ("https://lab.example/api/jwt/me", Some("https://lab.example/api/jwt/me")),
        ("https://lab.example/api/jwt/me?x=1#top", Some("https://lab.example/api/jwt/me")),
        ("HTTPS://Lab.EXAMPLE/api/jwt/me", Some("https://lab.example/api/jwt/me")),
        ("https://lab.example:443/api/jwt/me", Some("https://lab.example/api/jwt/me")),
        ("http://127.0.0.1:80", Some("http://127.0.0.1/")),
        ("https://lab.example/api/x/../jwt/./me", Some("https://lab.example/api/jwt/me")),
        ("https://lab.example:8443/api/jwt/me", Some("https://lab.example:8443/api/jwt/me")),
        // The path's case is the path's: /API is another resource.
        ("https://lab.example/API/jwt/me", Some("https://lab.example/API/jwt/me")),
        ("/api/jwt/me", None),
        ("ftp://lab.example/api", None),
        ("https://user:pass@lab.example/api", None),
        ("not a url", None),
    ];
    for (text, expected) in cases {
        assert_eq!(normalize_htu(text).as_deref(), expected, "{text}");
    }
}

#[test]
fn ath_is_rfc_9449s() {
    // RFC 9449 §7.1's example access token and the `ath` of its example proof.
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

const NONCE_KEY: &[u8] = b"the instances' shared nonce key.";

fn proof_claims() -> ProofClaims {
    ProofClaims {
        jti: "e1j3V_bKic8-LAEB".into(),
        htm: "GET".into(),
        htu: "https://lab.example/api/jwt/me".into(),
        iat: T0.unix_timestamp(),
        ath: None,
        nonce: None,
    }
}

const REQUEST: ProofContext<'static> = ProofContext {
    method: "GET",
    origins: &["https://lab.example"],
    path: "/api/jwt/me",
    access_token: None,
    nonce: NonceRule::None,
};

#[test]
fn claims_must_describe_this_request_now() {
    let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    let with_token = ProofContext { access_token: Some(token), ..REQUEST };
    let with_nonce = ProofContext { nonce: NonceRule::Required { key: NONCE_KEY }, ..REQUEST };
    let loopback = ProofContext {
        origins: &["http://127.0.0.1:3000", "http://localhost:3000"],
        path: "/api/jwt/me",
        ..REQUEST
    };
    let on_loopback = |htu: &str| ProofClaims { htu: htu.into(), ..proof_claims() };
    let at = |seconds: i64| ProofClaims { iat: T0.unix_timestamp() + seconds, ..proof_claims() };
    let cases: Vec<(&str, ProofClaims, ProofContext<'_>, Result<(), ProofRejection>)> = vec![
        ("as sent", proof_claims(), REQUEST, Ok(())),
        ("a minute old", at(-60), REQUEST, Ok(())),
        ("older", at(-61), REQUEST, Err(ProofRejection::TooOld)),
        ("a client clock 5 s fast", at(5), REQUEST, Ok(())),
        ("further ahead", at(6), REQUEST, Err(ProofRejection::FromTheFuture)),
        ("far future", at(i64::MAX / 2), REQUEST, Err(ProofRejection::FromTheFuture)),
        ("far past", at(i64::MIN / 2), REQUEST, Err(ProofRejection::TooOld)),
        (
            "another method",
            ProofClaims { htm: "POST".into(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::WrongMethod),
        ),
        (
            "a method in lower case",
            ProofClaims { htm: "get".into(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::WrongMethod),
        ),
        (
            "another path",
            ProofClaims { htu: "https://lab.example/api/device/me".into(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::WrongUrl),
        ),
        (
            "another origin",
            ProofClaims { htu: "https://evil.example/api/jwt/me".into(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::WrongUrl),
        ),
        (
            "http for https",
            ProofClaims { htu: "http://lab.example/api/jwt/me".into(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::WrongUrl),
        ),
        (
            "another spelling, a query",
            ProofClaims { htu: "HTTPS://LAB.example:443/api/jwt/me?a=b".into(), ..proof_claims() },
            REQUEST,
            Ok(()),
        ),
        ("one loopback name", on_loopback("http://127.0.0.1:3000/api/jwt/me"), loopback, Ok(())),
        ("the other", on_loopback("http://localhost:3000/api/jwt/me"), loopback, Ok(())),
        (
            "another port",
            on_loopback("http://localhost:3001/api/jwt/me"),
            loopback,
            Err(ProofRejection::WrongUrl),
        ),
        (
            "another path",
            on_loopback("http://localhost:3000/api/jwt/me/"),
            loopback,
            Err(ProofRejection::WrongUrl),
        ),
        (
            "a path only",
            ProofClaims { htu: "/api/jwt/me".into(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::WrongUrl),
        ),
        (
            "no jti",
            ProofClaims { jti: String::new(), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::BadJti),
        ),
        (
            "a jti of 128",
            ProofClaims { jti: "j".repeat(JTI_MAX_CHARS), ..proof_claims() },
            REQUEST,
            Ok(()),
        ),
        (
            "a jti of 129",
            ProofClaims { jti: "j".repeat(JTI_MAX_CHARS + 1), ..proof_claims() },
            REQUEST,
            Err(ProofRejection::BadJti),
        ),
        (
            "a token and no ath",
            proof_claims(),
            with_token,
            Err(ProofRejection::WrongAccessTokenHash),
        ),
        (
            "a token and its ath",
            ProofClaims { ath: Some(access_token_hash(token)), ..proof_claims() },
            with_token,
            Ok(()),
        ),
        (
            "a token and another's ath",
            ProofClaims { ath: Some(access_token_hash("other")), ..proof_claims() },
            with_token,
            Err(ProofRejection::WrongAccessTokenHash),
        ),
        ("a nonce asked for, none sent", proof_claims(), with_nonce, Err(ProofRejection::UseNonce)),
        (
            "the nonce",
            ProofClaims { nonce: Some(nonce(NONCE_KEY, T0)), ..proof_claims() },
            with_nonce,
            Ok(()),
        ),
        (
            "another key's nonce",
            ProofClaims { nonce: Some(nonce(b"another key", T0)), ..proof_claims() },
            with_nonce,
            Err(ProofRejection::UseNonce),
        ),
        (
            "a nonce nobody asked for",
            ProofClaims { nonce: Some("anything".into()), ..proof_claims() },
            REQUEST,
            Ok(()),
        ),
    ];
    for (name, claims, request, expected) in cases {
        assert_eq!(check_claims(&claims, &request, T0), expected, "{name}");
    }
}

#[test]
fn a_nonce_lives_one_to_two_periods_and_never_before_its_own() {
    let issued_at_start = nonce(NONCE_KEY, T0);
    let issued_at_end = nonce(NONCE_KEY, T0 + NONCE_PERIOD - Duration::seconds(1));
    assert_eq!(issued_at_start, issued_at_end, "one nonce per period");
    let second = Duration::seconds(1);
    let cases = [
        (T0, true),
        (T0 + NONCE_PERIOD, true),
        (T0 + NONCE_PERIOD * 2 - second, true),
        (T0 + NONCE_PERIOD * 2, false),
        // Not before its period began: a script cannot make tomorrow's nonces today.
        (T0 - second, false),
    ];
    for (now, valid) in cases {
        assert_eq!(nonce_is_valid(NONCE_KEY, &issued_at_start, now), valid, "{now}");
    }
    assert_ne!(nonce(NONCE_KEY, T0 + NONCE_PERIOD), issued_at_start);
    assert_ne!(nonce(b"another key", T0), issued_at_start);
    for garbage in ["", "x", &issued_at_start[1..], &format!("{issued_at_start}=")] {
        assert!(!nonce_is_valid(NONCE_KEY, garbage, T0), "{garbage:?}");
    }
}

#[cfg(feature = "jwt")]
mod signed {
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use serde_json::{Value, json};

    use super::*;

    struct Signer {
        key: EncodingKey,
        algorithm: Algorithm,
        jwk: Value,
    }

    fn p256() -> Signer {
        Signer {
            key: crate::test_jws::p256_key(),
            algorithm: Algorithm::ES256,
            jwk: crate::test_jws::p256_jwk(),
        }
    }

    fn ed25519(seed: u8) -> Signer {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        Signer {
            key: EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes()),
            algorithm: Algorithm::EdDSA,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
        }
    }

    /// `header` and `claims` as a JWT signed by `signer`, whatever the header says.
    fn sign(signer: &Signer, header: &Value, claims: &Value) -> String {
        crate::test_jws::sign(header, claims, &signer.key, signer.algorithm)
    }

    fn header(signer: &Signer) -> Value {
        let alg = if signer.algorithm == Algorithm::ES256 { "ES256" } else { "EdDSA" };
        json!({"typ": "dpop+jwt", "alg": alg, "jwk": signer.jwk})
    }

    fn claims() -> Value {
        serde_json::to_value(proof_claims()).unwrap()
    }

    fn thumbprint(signer: &Signer) -> String {
        serde_json::from_value::<Jwk>(signer.jwk.clone()).unwrap().thumbprint().unwrap()
    }

    #[test]
    fn a_proof_verifies_with_the_key_in_its_own_header_and_nothing_else() {
        let (p256, ed, other) = (p256(), ed25519(1), ed25519(2));
        let with = |mut value: Value, key: &str, member: Value| {
            value[key] = member;
            value
        };
        let mut tampered = sign(&ed, &header(&ed), &claims());
        tampered.replace_range(
            tampered.find('.').unwrap() + 1..tampered.rfind('.').unwrap(),
            &URL_SAFE_NO_PAD.encode(with(claims(), "htm", json!("POST")).to_string()),
        );
        // The fuzz target's first crash: its key's x with five characters cut from the middle
        // (28 bytes), which the JWT library sliced to 32 without checking.
        let short_key =
            json!({"kty": "OKP", "crv": "Ed25519", "x": "_RckOFqgx1tk-3jNYC-h2ZH96_drE8WO1wL9hg"});
        let mut with_private_key = header(&ed);
        with_private_key["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
        let cases: Vec<(&str, String, Result<String, ProofRejection>)> = vec![
            ("ES256", sign(&p256, &header(&p256), &claims()), Ok(thumbprint(&p256))),
            ("EdDSA", sign(&ed, &header(&ed), &claims()), Ok(thumbprint(&ed))),
            (
                "typ JWT",
                sign(&ed, &with(header(&ed), "typ", json!("JWT")), &claims()),
                Err(ProofRejection::NotAProof),
            ),
            (
                "typ in capitals",
                sign(&ed, &with(header(&ed), "typ", json!("DPoP+JWT")), &claims()),
                Ok(thumbprint(&ed)),
            ),
            (
                "no typ",
                sign(&ed, &json!({"alg": "EdDSA", "jwk": ed.jwk}), &claims()),
                Err(ProofRejection::NotAProof),
            ),
            (
                "no jwk",
                sign(&ed, &json!({"typ": "dpop+jwt", "alg": "EdDSA"}), &claims()),
                Err(ProofRejection::KeyNotAccepted),
            ),
            (
                "the private key sent",
                sign(&ed, &with_private_key, &claims()),
                Err(ProofRejection::KeyNotAccepted),
            ),
            (
                "a key too short",
                sign(&ed, &with(header(&ed), "jwk", short_key), &claims()),
                Err(ProofRejection::KeyNotAccepted),
            ),
            (
                "alg none",
                sign(&ed, &with(header(&ed), "alg", json!("none")), &claims()),
                Err(ProofRejection::AlgorithmNotAccepted),
            ),
            (
                "alg HS256",
                sign(&ed, &with(header(&ed), "alg", json!("HS256")), &claims()),
                Err(ProofRejection::AlgorithmNotAccepted),
            ),
            (
                "ES256 named, Ed25519 key",
                sign(&ed, &with(header(&ed), "alg", json!("ES256")), &claims()),
                Err(ProofRejection::AlgorithmNotAccepted),
            ),
            (
                "signed by another key",
                sign(&other, &header(&ed), &claims()),
                Err(ProofRejection::BadSignature),
            ),
            ("claims changed after signing", tampered, Err(ProofRejection::BadSignature)),
            ("not a JWT", "dpop".to_owned(), Err(ProofRejection::Malformed)),
            (
                "four parts",
                format!("{}.x", sign(&ed, &header(&ed), &claims())),
                Err(ProofRejection::Malformed),
            ),
            (
                "claims not a proof's",
                sign(&ed, &header(&ed), &json!({"sub": "1"})),
                Err(ProofRejection::Malformed),
            ),
            // The signature is good; the claims are then judged like any others.
            (
                "another URL",
                sign(&ed, &header(&ed), &with(claims(), "htu", json!("https://lab.example/x"))),
                Err(ProofRejection::WrongUrl),
            ),
        ];
        for (name, proof, expected) in cases {
            let verified = verify_proof(&proof, &REQUEST, T0).map(|v| {
                assert_eq!(v.claims, proof_claims(), "{name}");
                v.jkt
            });
            assert_eq!(verified, expected, "{name}");
        }
    }
}

#[test]
fn a_credential_is_used_with_a_proof_exactly_when_it_is_bound() {
    let cases = [
        ("bearer, no proof", None, None, Ok(())),
        ("bound, its key", Some("key-a"), Some("key-a"), Ok(())),
        ("bound, another key", Some("key-a"), Some("key-b"), Err(BindingMismatch::OtherKey)),
        ("bound, no proof", Some("key-a"), None, Err(BindingMismatch::ProofMissing)),
        ("bearer, a proof", None, Some("key-a"), Err(BindingMismatch::NotBound)),
    ];
    for (what, bound_to, proved_by, expected) in cases {
        assert_eq!(check_binding(bound_to, proved_by), expected, "{what}");
    }
}
