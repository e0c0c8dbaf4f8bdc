//! Scheme 1 of the article: a token bound to the device, kept in the database and in the server
//! session, re-attached from the database when the session times out (claims C4 and C5).
//!
//! Two modes side by side:
//! - **as written**: the device id *is* the token, stored as is, with no lifetime. A device id is
//!   neither secret nor revocable, so whoever learns it is the user, forever.
//! - **hardened**: a random 256-bit secret bound to (user, device), stored hashed, with an absolute
//!   lifetime, rotated at every re-attach; presenting the secret it replaced after a short grace
//!   window is taken as theft and revokes the device (Spring Security's persistent remember-me).
//! - **bound** (beyond the article): no secret is sent at all. At login the device registers a
//!   public key (the thumbprint of the key its DPoP proof was signed with); every request carries
//!   a fresh proof by that key instead of a token, and a re-attach needs one too. A copied cookie
//!   or copied headers are worthless without the private key, which never leaves the device.

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::Timestamp;
use crate::account::RuleViolation;
use crate::reason::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceMode {
    AsWritten,
    Hardened,
    Bound,
}

impl DeviceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceMode::AsWritten => "as_written",
            DeviceMode::Hardened => "hardened",
            DeviceMode::Bound => "bound",
        }
    }

    pub fn parse(raw: &str) -> Option<DeviceMode> {
        match raw {
            "as_written" => Some(DeviceMode::AsWritten),
            "hardened" => Some(DeviceMode::Hardened),
            "bound" => Some(DeviceMode::Bound),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePolicy {
    /// Absolute lifetime of a hardened token or a bound key; re-attaching never extends it.
    pub token_lifetime: Duration,
    /// How long the secret a rotation replaced is still accepted, for requests that were already
    /// in flight with it.
    pub rotation_grace: Duration,
}

impl DevicePolicy {
    /// 60 days is the article's refresh-token horizon; 30 s covers a page's parallel requests.
    pub const DEFAULT: DevicePolicy =
        DevicePolicy { token_lifetime: Duration::days(60), rotation_grace: Duration::seconds(30) };
}

pub const DEVICE_ID_MIN_CHARS: usize = 8;
pub const DEVICE_ID_MAX_CHARS: usize = 128;

/// Device ids come from the client (in the lab: a random id in localStorage). They only need to
/// be distinguishable and safe to store and show.
pub fn validate_device_id(raw: &str) -> Result<(), RuleViolation> {
    let ok = (DEVICE_ID_MIN_CHARS..=DEVICE_ID_MAX_CHARS).contains(&raw.len())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RuleViolation {
            reason: Reason::InvalidDeviceId,
            message: "a device id has 8 to 128 characters from A-Z, a-z, 0-9, '-' and '_'".into(),
        })
    }
}

/// A stored device as far as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    pub revoked: bool,
    /// `None`: no lifetime (the article's mode).
    pub expires_at: Option<Timestamp>,
}

/// Whether a device's token may still be used at `now`.
pub fn check_device(state: DeviceState, now: Timestamp) -> Result<(), Reason> {
    if state.revoked {
        return Err(Reason::DeviceRevoked);
    }
    match state.expires_at {
        Some(expires_at) if now >= expires_at => Err(Reason::DeviceTokenExpired),
        _ => Ok(()),
    }
}

/// A hardened client presented the secret that a rotation at `rotated_at` replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousSecret {
    /// A request that was in flight during the rotation: accept it.
    WithinGrace,
    /// Someone still holds the old secret long after it was replaced: the legitimate client or a
    /// thief has a copy it should not have. Revoke the device.
    Reused,
}

pub fn previous_secret(
    policy: &DevicePolicy,
    rotated_at: Timestamp,
    now: Timestamp,
) -> PreviousSecret {
    if now < rotated_at + policy.rotation_grace {
        PreviousSecret::WithinGrace
    } else {
        PreviousSecret::Reused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn device_ids() {
        let long = "a".repeat(129);
        let cases: [(&str, bool); 6] = [
            ("dev-4f3a9c21", true),
            ("0123456789abcdef_ABC", true),
            ("short", false),
            ("has space here", false),
            ("ünicode-device", false),
            (&long, false),
        ];
        for (id, ok) in cases {
            assert_eq!(validate_device_id(id).is_ok(), ok, "{id:?}");
        }
    }

    #[test]
    fn device_checks() {
        let later = T0 + Duration::days(60);
        let cases = [
            (DeviceState { revoked: false, expires_at: None }, T0 + Duration::days(10_000), Ok(())),
            (
                DeviceState { revoked: false, expires_at: Some(later) },
                later - Duration::SECOND,
                Ok(()),
            ),
            (
                DeviceState { revoked: false, expires_at: Some(later) },
                later,
                Err(Reason::DeviceTokenExpired),
            ),
            (DeviceState { revoked: true, expires_at: None }, T0, Err(Reason::DeviceRevoked)),
            (
                DeviceState { revoked: true, expires_at: Some(later) },
                later,
                Err(Reason::DeviceRevoked),
            ),
        ];
        for (state, now, expected) in cases {
            assert_eq!(check_device(state, now), expected, "{state:?} at {now}");
        }
    }

    #[test]
    fn previous_secrets() {
        let policy = DevicePolicy::DEFAULT;
        let cases = [
            (Duration::ZERO, PreviousSecret::WithinGrace),
            (Duration::seconds(29), PreviousSecret::WithinGrace),
            (Duration::seconds(30), PreviousSecret::Reused),
            (Duration::days(1), PreviousSecret::Reused),
        ];
        for (after, expected) in cases {
            assert_eq!(previous_secret(&policy, T0, T0 + after), expected, "+{after}");
        }
    }

    #[test]
    fn modes_round_trip() {
        for mode in [DeviceMode::AsWritten, DeviceMode::Hardened, DeviceMode::Bound] {
            assert_eq!(DeviceMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(DeviceMode::parse("Hardened"), None);
    }
}
