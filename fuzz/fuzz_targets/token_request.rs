//! `POST /api/oauth/token` and `/api/oauth/revoke` bodies, form-encoded (as axum's `Form` reads
//! them) and JSON, and the grant a token request makes (`TokenRequest::into_grant`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret as _, SecretString};
use tokenlab_core::Reason;
use tokenlab_core::wire::credentials::{Grant, RevokeRequest, TokenRequest};

fn judge(request: TokenRequest, cookie: Option<SecretString>) {
    let grant_type = request.grant_type.clone();
    let body_token = request.refresh_token.as_ref().map(|t| t.expose_secret().to_owned());
    match request.into_grant(cookie.clone()) {
        Ok(Grant::Password { .. }) => assert_eq!(grant_type.as_deref(), Some(Grant::PASSWORD)),
        Ok(Grant::RefreshToken(token)) => {
            assert_eq!(grant_type.as_deref(), Some(Grant::REFRESH_TOKEN));
            // The body's token, or else the cookie's: never anything else.
            let expected = body_token.or(cookie.map(|c| c.expose_secret().to_owned()));
            assert_eq!(Some(token.expose_secret().to_owned()), expected);
        }
        Err(violation) => {
            assert!(matches!(
                violation.reason,
                Reason::InvalidRequest | Reason::UnsupportedGrantType
            ));
            assert!(!violation.message.is_empty());
        }
    }
}

fuzz_target!(|body: &[u8]| {
    // The last byte, when odd, stands for a `tl_refresh` cookie carrying the body itself.
    let cookie = body
        .last()
        .filter(|b| *b % 2 == 1)
        .and_then(|_| std::str::from_utf8(body).ok())
        .map(SecretString::from);
    if let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(body) {
        judge(request, cookie.clone());
    }
    if let Ok(request) = serde_json::from_slice::<TokenRequest>(body) {
        judge(request, cookie);
    }
    let _ = serde_urlencoded::from_bytes::<RevokeRequest>(body);
    let _ = serde_json::from_slice::<RevokeRequest>(body);
});
