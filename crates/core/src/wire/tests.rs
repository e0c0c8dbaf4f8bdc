//! The wire shapes the API tests and `docs/walkthrough.md` rely on, checked where they are
//! declared: what the server writes, the browser reads back unchanged.

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::macros::datetime;

use super::*;
use crate::Reason;
use crate::device::DeviceMode;
use crate::signout::Scheme;

/// Serializes `value`, compares the JSON with `expected`, and reads it back as an equal value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
    expected: &str,
) {
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(json, expected);
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value);
}

#[test]
fn error_bodies_flatten_their_details_and_name_the_reason_by_its_code() {
    let plain = ErrorBody {
        reason: Reason::UsernameTaken,
        message: "this username is taken".into(),
        details: ErrorDetails::default(),
    };
    round_trip(&plain, r#"{"reason":"username_taken","message":"this username is taken"}"#);
    let duplicate = ErrorBody {
        reason: Reason::DuplicateSubmit,
        message: "already submitted".into(),
        details: ErrorDetails { original_order_id: Some(7) },
    };
    round_trip(
        &duplicate,
        r#"{"reason":"duplicate_submit","message":"already submitted","original_order_id":7}"#,
    );
    // A detail this build does not know yet is ignored, not an error.
    let newer: ErrorBody =
        serde_json::from_str(r#"{"reason":"not_found","message":"m","hint":"x"}"#).unwrap();
    assert_eq!(newer.details, ErrorDetails::default());
}

#[test]
fn oauth_errors_carry_the_rfc_code_and_the_reason() {
    let body = OAuthErrorBody {
        error: OAuthErrorCode::for_reason(Reason::RefreshReused),
        error_description: "reused".into(),
        reason: Reason::RefreshReused,
        message: "reused".into(),
    };
    round_trip(
        &body,
        r#"{"error":"invalid_grant","error_description":"reused","reason":"refresh_reused","message":"reused"}"#,
    );
    for (reason, code) in [
        (Reason::UnsupportedGrantType, OAuthErrorCode::UnsupportedGrantType),
        (Reason::InvalidRequest, OAuthErrorCode::InvalidRequest),
        (Reason::InvalidJson, OAuthErrorCode::InvalidRequest),
        (Reason::UnsupportedMediaType, OAuthErrorCode::InvalidRequest),
        (Reason::InvalidCredentials, OAuthErrorCode::InvalidGrant),
        (Reason::RateLimited, OAuthErrorCode::InvalidGrant),
    ] {
        assert_eq!(OAuthErrorCode::for_reason(reason), code, "{reason}");
    }
}

#[test]
fn timestamps_are_rfc3339_and_optional_ones_null() {
    let device = DeviceListEntry {
        device: DeviceView {
            id: 1,
            device_id_masked: "dev-…e8".into(),
            name: "curl".into(),
            mode: DeviceMode::AsWritten,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            last_seen_at: datetime!(2026-01-02 03:04:06 UTC),
            token_expires_at: None,
            revoked: false,
        },
        current: true,
    };
    round_trip(
        &device,
        r#"{"id":1,"device_id_masked":"dev-…e8","name":"curl","mode":"as_written","created_at":"2026-01-02T03:04:05Z","last_seen_at":"2026-01-02T03:04:06Z","token_expires_at":null,"revoked":false,"current":true}"#,
    );
    let entry = ActiveSession {
        id: "d_1".into(),
        scheme: Scheme::Device,
        label: "hardened device token".into(),
        user_agent: "curl".into(),
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        last_seen_at: Some(datetime!(2026-01-02 03:04:06 UTC)),
        idle_expires_at: None,
        absolute_expires_at: None,
        current: false,
    };
    round_trip(
        &entry,
        r#"{"id":"d_1","scheme":"device","label":"hardened device token","user_agent":"curl","created_at":"2026-01-02T03:04:05Z","last_seen_at":"2026-01-02T03:04:06Z","idle_expires_at":null,"absolute_expires_at":null,"current":false}"#,
    );
}

#[test]
fn the_browser_variant_of_a_token_response_has_no_refresh_token() {
    let mut response = TokenResponse {
        access_token: "a".into(),
        token_type: "Bearer".into(),
        expires_in: 300,
        refresh_token: Some("r".into()),
        refresh_expires_in: 600,
    };
    round_trip(
        &response,
        r#"{"access_token":"a","token_type":"Bearer","expires_in":300,"refresh_token":"r","refresh_expires_in":600}"#,
    );
    response.refresh_token = None;
    round_trip(
        &response,
        r#"{"access_token":"a","token_type":"Bearer","expires_in":300,"refresh_expires_in":600}"#,
    );
}

#[test]
fn closed_vocabularies_are_snake_case() {
    let jwk = Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: "x".into(),
        kid: "k".into(),
        alg: "EdDSA".into(),
        usage: "sig".into(),
    };
    round_trip(
        &jwk,
        r#"{"kty":"OKP","crv":"Ed25519","x":"x","kid":"k","alg":"EdDSA","use":"sig"}"#,
    );
    round_trip(&FamilyTokenState::Rotated, r#""rotated""#);
    round_trip(&InspectedSessionState::IdleExpired, r#""idle_expired""#);
    round_trip(&InspectedDeviceState::Revoked, r#""revoked""#);
    round_trip(&InspectedTokenState::Current, r#""current""#);
    round_trip(&IdempotencyKeyState::InFlight, r#""in_flight""#);
}

/// `as_str` is what the browser shows and puts in `data-state`: it must be the wire form.
#[test]
fn state_names_are_their_wire_form() {
    fn wire<T: Serialize>(value: T) -> String {
        serde_json::to_string(&value).unwrap().trim_matches('"').to_owned()
    }
    for state in [FamilyTokenState::Active, FamilyTokenState::Rotated, FamilyTokenState::Revoked] {
        assert_eq!(state.as_str(), wire(state));
    }
    for state in [
        InspectedSessionState::Live,
        InspectedSessionState::IdleExpired,
        InspectedSessionState::AbsoluteExpired,
    ] {
        assert_eq!(state.as_str(), wire(state));
    }
    for state in
        [InspectedDeviceState::Live, InspectedDeviceState::Expired, InspectedDeviceState::Revoked]
    {
        assert_eq!(state.as_str(), wire(state));
    }
    for state in [
        InspectedTokenState::Current,
        InspectedTokenState::Rotated,
        InspectedTokenState::Expired,
        InspectedTokenState::Revoked,
    ] {
        assert_eq!(state.as_str(), wire(state));
    }
    for state in [IdempotencyKeyState::InFlight, IdempotencyKeyState::Finished] {
        assert_eq!(state.as_str(), wire(state));
    }
    for mode in [DeviceMode::AsWritten, DeviceMode::Hardened, DeviceMode::Bound] {
        assert_eq!(mode.as_str(), wire(mode));
    }
    for scheme in Scheme::ALL {
        assert_eq!(scheme.as_str(), wire(scheme));
    }
    for code in OAuthErrorCode::ALL {
        assert_eq!(code.as_str(), wire(code));
    }
}

#[test]
fn requests_omit_what_they_do_not_set_and_refuse_unknown_fields() {
    round_trip(
        &NewOrder { item: "green tea".into(), quantity: 2, form_token: None },
        r#"{"item":"green tea","quantity":2}"#,
    );
    round_trip(
        &ClockChange { advance_seconds: Some(1860), reset: None },
        r#"{"advance_seconds":1860}"#,
    );
    assert!(serde_json::from_str::<RevokeAll>(r#"{"keep_current":true,"x":1}"#).is_err());
}
