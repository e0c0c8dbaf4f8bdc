#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/: each fuzz target's starting corpus, taken from the inputs the API and
unit tests send (named after the test they come from). `just fuzz` and `just fuzz-smoke` start from
these and keep what libFuzzer finds beyond them in the target directory, so the repository only
holds this script's output. Run it again after changing a case: `python3 fuzz/seeds.py`."""

import base64
import hashlib
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent / "seeds"
ISSUER = "https://lab.example"  # the fuzz target's issuer, as the production tests' public URL
NOW = 1767225600  # helpers::START, 2026-01-01T00:00:00Z


def claims(**changes):
    base = {
        "iss": ISSUER, "aud": "tokenlab-api", "sub": "1", "iat": NOW, "nbf": NOW,
        "exp": NOW + 900, "jti": "0" * 32, "sid": "f" * 32, "preferred_username": "alice",
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key)
        else:
            base[key] = value
    return base


def signed(header, body):
    """access_token's odd mode: a header and claims the target signs with its own key."""
    return b"1" + json.dumps(header).encode() + b"\n" + json.dumps(body).encode()


def raw(token):
    """access_token's even mode: the token as a client sends it."""
    return b"0" + token.encode()


EDDSA = {"alg": "EdDSA", "typ": "JWT", "kid": "fuzz-key"}

# dpop_proof's signing key: Ed25519 from the seed 32 × 0x09; its public half, base64url
# (`openssl pkey -pubout` of that seed's PKCS#8 form).
DPOP_X = "_RckOFqgx1tk-3jNYC-h2ZH96_drE8WO1wLqyDXp9hg"
DPOP_HEADER = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": DPOP_X}}
# `ath` of the access token dpop_proof's requests present: base64url SHA-256 of "an.access.token".
ATH = base64.urlsafe_b64encode(hashlib.sha256(b"an.access.token").digest()).rstrip(b"=").decode()


def proof(mode, header=None, **changes):
    """dpop_proof's signed mode (bit 0 set): a header and claims the target signs. Bit 1: the
    request presents an access token; bit 2: the server asks for a nonce."""
    body = {"jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": "https://lab.example/api/jwt/me", "iat": NOW}
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return bytes([mode]) + json.dumps(header or DPOP_HEADER).encode() + b"\n" + json.dumps(body).encode()

SEEDS = {
    # tests/api/oauth.rs forged_and_malformed_tokens_are_refused, and the good token before it.
    "access_token": {
        "good": signed(EDDSA, claims()),
        "alg_none": raw("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0."),
        "hs256": signed({"alg": "HS256", "typ": "JWT", "kid": "fuzz-key"}, claims()),
        "unknown_kid": signed({**EDDSA, "kid": "not-ours"}, claims()),
        "no_kid": signed({"alg": "EdDSA", "typ": "JWT"}, claims()),
        "missing_exp": signed(EDDSA, claims(exp=None)),
        "exp_as_a_string": signed(EDDSA, claims(exp="soon")),
        "nbf_in_the_future": signed(EDDSA, claims(nbf=NOW + 3600)),
        "wrong_aud": signed(EDDSA, claims(aud="someone-else")),
        "wrong_iss": signed(EDDSA, claims(iss="https://evil.example")),
        "sub_not_a_number": signed(EDDSA, claims(sub=["1"])),
        "missing_sid": signed(EDDSA, claims(sid=None)),
        "exp_at_the_end_of_i64": signed(EDDSA, claims(exp=2**63 - 1, iat=-(2**63))),
        "three_dots": raw("a.b.c"),
    },
    # tests/api/oauth.rs: the form and JSON token requests, and crates/core wire::credentials tests.
    "token_request": {
        "password_form": b"grant_type=password&username=alice&password=wonderland-demo",
        "refresh_form": b"grant_type=refresh_token&refresh_token=" + b"ab" * 32,
        "refresh_json": json.dumps({"grant_type": "refresh_token", "refresh_token": "ab" * 32}).encode(),
        "password_json": json.dumps({"grant_type": "password", "username": "alice", "password": "p"}).encode(),
        "unsupported_grant": b"grant_type=client_credentials&scope=x",
        "no_grant_type": b"username=alice&password=p",
        "revoke_form": b"token=" + b"cd" * 32,
        "percent_encoded": b"grant_type=password&username=al%69ce&password=%F0%9F%94%91",
    },
    # crates/core dpop/tests.rs: the proofs the table tests sign, and the refusals beside them.
    "dpop_proof": {
        "good": proof(1),
        "with_ath": proof(3, ath=ATH),
        "ath_missing": proof(3),
        "nonce_missing": proof(5),
        "too_old": proof(1, iat=NOW - 61),
        "ahead": proof(1, iat=NOW + 5),
        "another_url": proof(1, htu="https://lab.example/api/device/me"),
        "query_and_case": proof(1, htu="HTTPS://LAB.example:443/api/jwt/me?a=b"),
        "typ_jwt": proof(1, header={**DPOP_HEADER, "typ": "JWT"}),
        "private_key": proof(1, header={**DPOP_HEADER, "jwk": {**DPOP_HEADER["jwk"], "d": DPOP_X}}),
        "es256_named": proof(1, header={**DPOP_HEADER, "alg": "ES256"}),
        "raw": b"\x00eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.",
    },
    # crates/core random.rs tokens_round_trip_and_only_their_own_form_decodes.
    "refresh_token": {
        "issued": ("0123456789abcdef" * 4).encode(),
        "upper_case": ("0123456789ABCDEF" * 4).encode(),
        "one_short": ("0123456789abcdef" * 4)[1:].encode(),
        "raw_secret": bytes(range(32)),
    },
    # tests/api/session.rs: a cookie as tower-sessions writes it, and ones it must refuse.
    "session_cookie": {
        "issued": b"AAECAwQFBgcICQoLDA0ODw",
        "padded": b"AAECAwQFBgcICQoLDA0ODw==",
        "standard_alphabet": b"AAECAwQFBgcICQoLDA0O+/",
        "too_long": b"AAECAwQFBgcICQoLDA0ODxAR",
    },
    # tests/api/accounts.rs, session.rs, device.rs, orders.rs, clock.rs: the JSON bodies they send.
    "request_bodies": {
        "login": json.dumps({"username": "alice", "password": "wonderland-demo"}).encode(),
        "new_account": json.dumps({"username": "user1", "password": "password of user 1"}).encode(),
        "password_change": json.dumps({"username": "alice", "current_password": "a", "new_password": "b"}).encode(),
        "device_login": json.dumps({"username": "alice", "password": "p", "device_id": "phone-1", "mode": "hardened"}).encode(),
        "as_written": json.dumps({"username": "alice", "password": "p", "device_id": "phone-1", "mode": "as_written"}).encode(),
        "order": json.dumps({"item": "coffee", "quantity": 2}).encode(),
        "clock": json.dumps({"advance_seconds": 3600}).encode(),
        "unknown_field": json.dumps({"username": "alice", "password": "p", "admin": True}).encode(),
    },
    # tests/api/accounts.rs and device.rs: names, passwords and device ids, accepted and refused.
    "account_and_device_rules": {
        "name": b"alice", "capital": b"Alice", "cyrillic": "аlice".encode(),
        "device": b"phone-1", "device_space": b"phone 1", "mode": b"as_written",
    },
    # tests/api/orders.rs: Idempotency-Key values.
    "idempotency_key": {
        "uuid": b"8e2b1b4e-0a5e-4f7b-9d8a-3f1c2b7a6d5e", "quoted": b'"order-1"', "empty_quoted": b'""',
    },
    # tests/api/throttle.rs and core request.rs: (trusted proxy?, peer, X-Forwarded-For).
    "client_address": {
        "trusted": b"\x01\x7f\x00\x00\x01" + b"198.51.100.7, 203.0.113.5",
        "untrusted": b"\x00\xc6\x33\x64\x07" + b"203.0.113.5",
        "v6": b"\x01\x7f\x00\x00\x01" + b"2001:db8::1",
        "garbage": b"\x01\x7f\x00\x00\x01" + b"unknown, ,",
    },
}


def main():
    for target, cases in SEEDS.items():
        folder = ROOT / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in cases.items():
            (folder / name).write_bytes(data)
    print(f"wrote {sum(len(c) for c in SEEDS.values())} seeds for {len(SEEDS)} targets under {ROOT}")


if __name__ == "__main__":
    main()
