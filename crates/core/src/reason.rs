//! Every machine-readable reason the API can give, in one table.
//!
//! A reason is the stable part of an error: clients branch on it, the lab explains it, tests assert
//! it. The HTTP status, the explanation the UI shows and the rule it enforces are stated once, here.

use serde::{Deserialize, Serialize};

macro_rules! reasons {
    ($( $variant:ident = $code:literal, $status:literal, $explanation:literal, $rule:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Reason { $( $variant, )* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The wire form, as in `{"reason": "..."}`.
            pub const fn code(self) -> &'static str {
                match self { $( Reason::$variant => $code, )* }
            }

            /// The HTTP status this reason is always answered with.
            pub const fn status(self) -> u16 {
                match self { $( Reason::$variant => $status, )* }
            }

            /// What happened and what to do, in words a learner can act on.
            pub const fn explanation(self) -> &'static str {
                match self { $( Reason::$variant => $explanation, )* }
            }

            /// The standard or guideline the refusal enforces, where there is one.
            pub const fn rule(self) -> &'static str {
                match self { $( Reason::$variant => $rule, )* }
            }

            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $( $code => Some(Reason::$variant), )* _ => None }
            }
        }
    };
}

reasons! {
    InvalidJson = "invalid_json", 400,
        "The request body is not valid JSON.",
        "RFC 9110 §15.5.1 (400 Bad Request)";
    BadRequest = "bad_request", 400,
        "The request could not be read: a path parameter, a header or the body is malformed.",
        "RFC 9110 §15.5.1 (400 Bad Request)";
    InvalidQuery = "invalid_query", 400,
        "The query string is malformed: a parameter has the wrong type or appears twice.",
        "RFC 9110 §15.5.1 (400 Bad Request)";
    UnsupportedMediaType = "unsupported_media_type", 415,
        "The request body must be sent as application/json.",
        "RFC 9110 §15.5.16";
    InvalidBody = "invalid_body", 422,
        "The JSON is well-formed but a field is missing or has the wrong type.",
        "RFC 9110 §15.5.21 (422 Unprocessable Content)";
    InvalidUsername = "invalid_username", 422,
        "Usernames have 3 to 32 characters from a-z, 0-9, '_', '.', '-' and start with a letter or digit.",
        "tokenlab account rules";
    WeakPassword = "weak_password", 422,
        "Passwords have 8 to 128 characters; every character counts, spaces included.",
        "NIST SP 800-63B §5.1.1.2; OWASP ASVS V2.1";
    UsernameTaken = "username_taken", 409,
        "Another account already has this username.",
        "tokenlab account rules";
    InvalidCredentials = "invalid_credentials", 401,
        "The username or the password is wrong. Which one is not said, so that names cannot be probed.",
        "OWASP ASVS V2.2 / Authentication Cheat Sheet (generic error messages)";
    RateLimited = "rate_limited", 429,
        "Too many failed logins from this address, for this account from this address, or for this account from everywhere (or too many registrations from this address); wait for Retry-After seconds.",
        "OWASP ASVS V2.2.1 (anti-automation); RFC 6585 §4";
    NotLoggedIn = "not_logged_in", 401,
        "This request carries no valid session. Log in first.",
        "RFC 9110 §15.5.2 (401 Unauthorized)";
    SessionExpired = "session_expired", 401,
        "The server session timed out (idle or absolute timeout). With a session id as the token, the only way back is to log in again.",
        "OWASP Session Management Cheat Sheet (idle and absolute timeouts)";
    CrossSiteRequest = "cross_site_request", 403,
        "A page of another site tried to change state here with your cookies; the request was refused.",
        "OWASP CSRF Prevention Cheat Sheet (Origin and Fetch Metadata checks)";
    InvalidDeviceId = "invalid_device_id", 422,
        "A device id has 8 to 128 characters from A-Z, a-z, 0-9, '-' and '_'.",
        "tokenlab device rules";
    DeviceCredentialsMissing = "device_credentials_missing", 401,
        "Device-token calls carry X-Device-Id and X-Device-Token headers (a bound device: X-Device-Id and a DPoP proof by its key). Log in on the device panel first.",
        "tokenlab device-token scheme";
    DeviceTokenMismatch = "device_token_mismatch", 401,
        "The token sent does not match the copy in this server session, so the request was refused even with a valid cookie.",
        "the article's device-token check (compare the client's token with the session's)";
    DeviceUnknown = "device_unknown", 401,
        "No live device matches this device id and token. Log in again on this device.",
        "the article's device-token check";
    DeviceRevoked = "device_revoked", 401,
        "This device was revoked (from the device list, by logging out, or after token theft was detected). Log in again.",
        "OWASP ASVS V3.3 (session termination)";
    DeviceTokenExpired = "device_token_expired", 401,
        "The hardened device token reached its absolute lifetime; re-attaching never extends it. Log in again.",
        "OWASP ASVS V3.3.2 (absolute maximum session lifetime)";
    DeviceTokenReused = "device_token_reused", 401,
        "A device secret that had already been replaced was presented again. Someone may hold a stolen copy, so the device was revoked. Log in again.",
        "Spring Security persistent remember-me (theft detection); RFC 9700 §4.14.2";
    TokenExpired = "token_expired", 401,
        "The access token's lifetime is over. A client refreshes it with its refresh token and retries.",
        "RFC 6750 §3.1 (invalid_token); RFC 7519 §4.1.4";
    TokenInvalid = "token_invalid", 401,
        "The access token is malformed, forged, signed with an unknown key, or lacks a required claim.",
        "RFC 6750 §3.1; RFC 8725 (JWT best current practices)";
    TokenRevoked = "token_revoked", 401,
        "The access token was signed correctly and has not expired, but its login was ended (sign out everywhere, a password change, or the end of its refresh-token family). tokenlab checks this on every request; most JWT setups do not, and would accept the token until it expires.",
        "OWASP ASVS V7.4 (session termination); RFC 7009 §2 (revocation)";
    TokenBound = "token_bound", 401,
        "This access token is bound to a key (DPoP): it counts only as Authorization: DPoP, beside a fresh proof signed by that key. Sent as Bearer, or copied without the key, it is worthless.",
        "RFC 9449 §7.1 (DPoP-bound access tokens)";
    DpopProofInvalid = "dpop_proof_invalid", 401,
        "The DPoP proof is missing, malformed, signed by another key than the one the token or refresh token is bound to, or names another method, URL or access token, or an iat outside the server's window (60 s back, 5 s ahead).",
        "RFC 9449 §4.3 (checking DPoP proofs)";
    DpopProofReplayed = "dpop_proof_replayed", 401,
        "This DPoP proof (its jti) was already used, on this server instance or another: a proof counts once. The client signs a fresh one for every request.",
        "RFC 9449 §11.1 (DPoP proof replay)";
    UseDpopNonce = "use_dpop_nonce", 401,
        "The server wants its current nonce in the DPoP proof: sign a new proof with the DPoP-Nonce this answer carries and retry. Nonces stop proofs made in advance by a script that has since lost the page.",
        "RFC 9449 §8–9 (server-provided nonce)";
    DbscProofInvalid = "dbsc_proof_invalid", 401,
        "The browser's Device Bound Session Credentials answer was refused: not an ES256 JWT signed by the session's key, or not for the challenge this server handed out (or the session is already bound).",
        "W3C Device Bound Session Credentials (draft): registration and refresh";
    DbscRefreshRequired = "dbsc_refresh_required", 401,
        "This session is bound to a key inside the browser (DBSC): beside the session cookie it needs a short-lived cookie that only that key can renew, and this request had none, or an expired one. The browser that holds the key renews it by itself; a copied session cookie cannot.",
        "W3C Device Bound Session Credentials (draft): short-lived bound cookies";
    DbscChallenge = "dbsc_challenge", 403,
        "A refresh of a bound session must answer a challenge: sign the one in Secure-Session-Challenge with the session's key and send it again.",
        "W3C Device Bound Session Credentials (draft): refresh";
    RefreshInvalid = "refresh_invalid", 400,
        "This refresh token was never issued here.",
        "RFC 6749 §5.2 (invalid_grant)";
    RefreshExpired = "refresh_expired", 400,
        "The refresh token expired (unused too long, or its family reached its absolute lifetime). Log in again.",
        "RFC 6749 §5.2 (invalid_grant); RFC 9700 §4.14.2";
    RefreshRevoked = "refresh_revoked", 400,
        "The refresh token's family was revoked (logout, revocation, or detected reuse). Log in again.",
        "RFC 7009; RFC 9700 §4.14.2";
    RefreshReused = "refresh_reused", 400,
        "A refresh token that had already been exchanged was presented again, so a copy may be in the wrong hands: its whole family is revoked and everyone holding it must log in again.",
        "RFC 9700 §4.14.2 (refresh token rotation, reuse detection)";
    UnsupportedGrantType = "unsupported_grant_type", 400,
        "grant_type must be password or refresh_token.",
        "RFC 6749 §5.2";
    InvalidRequest = "invalid_request", 400,
        "A parameter the grant needs is missing or malformed.",
        "RFC 6749 §5.2";
    InsecureModeDisabled = "insecure_mode_disabled", 403,
        "The article's device token as written (the device id is a permanent token) is a lesson, not a login: this server refuses it. Use the hardened mode.",
        "OWASP ASVS V7.2 (session tokens are random and expire); start with --allow-as-written-devices to teach it";
    InvalidOrder = "invalid_order", 422,
        "An order names an item (1 to 100 characters) and a quantity from 1 to 99.",
        "tokenlab order rules";
    FormTokenInvalid = "form_token_invalid", 422,
        "The form token is unknown, expired, or was issued to someone else. Fetch a fresh one.",
        "OWASP CSRF Prevention Cheat Sheet (synchronizer token pattern)";
    DuplicateSubmit = "duplicate_submit", 409,
        "This form token was already used: the submission was processed once, as the order named here. Nothing new was created.",
        "synchronizer token pattern (one-time form token)";
    IdempotencyKeyMissing = "idempotency_key_missing", 400,
        "A state-changing order needs an Idempotency-Key header or a one-time form token, so a retry cannot create a second order.",
        "draft-ietf-httpapi-idempotency-key-header §2";
    InvalidIdempotencyKey = "invalid_idempotency_key", 400,
        "An Idempotency-Key is 1 to 255 printable ASCII characters.",
        "draft-ietf-httpapi-idempotency-key-header §2.1";
    IdempotencyKeyInUse = "idempotency_key_in_use", 409,
        "A request with this Idempotency-Key is still being processed. Retry when it has finished to get its response.",
        "draft-ietf-httpapi-idempotency-key-header §2.6";
    IdempotencyKeyReused = "idempotency_key_reused", 422,
        "This Idempotency-Key was already used for a different request. A key names one request; use a new key for a new one.",
        "draft-ietf-httpapi-idempotency-key-header §2.6";
    InvalidClockAdvance = "invalid_clock_advance", 422,
        "The demo clock only moves forward, at most a year per step and ten years in all.",
        "tokenlab demo clock";
    NotFound = "not_found", 404,
        "There is nothing at this address (demo endpoints answer 404 outside the demo profile).",
        "RFC 9110 §15.5.5";
    MethodNotAllowed = "method_not_allowed", 405,
        "This address does not accept this HTTP method.",
        "RFC 9110 §15.5.6";
    RequestTimeout = "request_timeout", 408,
        "The request was not completed in time.",
        "RFC 9110 §15.5.9 (408 Request Timeout)";
    PayloadTooLarge = "payload_too_large", 413,
        "The request body is larger than the server accepts.",
        "RFC 9110 §15.5.14";
    DeadlineExceeded = "deadline_exceeded", 503,
        "The server did not finish this request within its deadline (--handler-timeout) and stopped waiting for it. Work already started may still complete: repeat a state-changing request with the same Idempotency-Key or form token to learn its outcome without doing it twice.",
        "RFC 9110 §15.6.4 (503 Service Unavailable)";
    SessionStoreUnavailable = "session_store_unavailable", 503,
        "The store that keeps server sessions (Redis, with --session-store) did not answer. Nothing about your sign-in changed; retry in a moment. Requests with an access token do not need it.",
        "RFC 9110 §15.6.4 (503 Service Unavailable)";
    DatabaseUnavailable = "database_unavailable", 503,
        "The database could not serve this request: no connection came free in time, or the connection was lost. Retry in a moment; repeat a state-changing request with the same Idempotency-Key or form token, so that it is done at most once.",
        "RFC 9110 §15.6.4 (503 Service Unavailable, Retry-After)";
    ServerBusy = "server_busy", 503,
        "Every password check the server can run at once is taken, and none came free in time. Nothing was checked; retry after Retry-After seconds. Requests with a token never wait for this.",
        "RFC 9110 §15.6.4 (503 Service Unavailable, Retry-After)";
    Internal = "internal", 500,
        "The server failed; the cause is in its log under this request's id.",
        "OWASP ASVS V7.4 (errors reveal nothing internal)";
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for reason in Reason::ALL {
            let code = reason.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            assert_eq!(Reason::from_code(code), Some(*reason));
            let json = serde_json::to_string(reason).unwrap();
            assert_eq!(json, format!("\"{code}\""), "serde and code() disagree");
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), *reason);
        }
    }

    #[test]
    fn statuses_are_errors_and_every_reason_is_explained() {
        for reason in Reason::ALL {
            assert!((400..600).contains(&reason.status()), "{reason}");
            assert!(!reason.explanation().is_empty(), "{reason}");
            assert!(!reason.rule().is_empty(), "{reason}");
        }
    }

    #[test]
    fn unknown_codes_are_not_guessed() {
        for code in ["", "Invalid_Json", "session", "internal "] {
            assert_eq!(Reason::from_code(code), None, "{code:?}");
        }
    }
}
