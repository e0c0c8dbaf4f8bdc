//! Exactly-once submission (the article's third section): a one-time form token, or an
//! `Idempotency-Key` as in the IETF draft `draft-ietf-httpapi-idempotency-key-header`.
//!
//! The database performs the atomic steps (claim a key, consume a token); this module says what a
//! stored idempotency record means for a new request, and what an acceptable order is.

use time::Duration;

use crate::Timestamp;
use crate::account::RuleViolation;
use crate::reason::Reason;

pub const ITEM_MAX_CHARS: usize = 100;
pub const QUANTITY_MIN: i64 = 1;
pub const QUANTITY_MAX: i64 = 99;
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitPolicy {
    /// How long a one-time form token can be used after it was issued.
    pub form_token_lifetime: Duration,
    /// How long a finished request's response is kept for replay (the draft suggests 24 h).
    pub idempotency_retention: Duration,
    /// How long a claimed key may stay "in flight" before another request may take it over: a
    /// server that crashed mid-request must not block the key for the whole retention.
    pub idempotency_lease: Duration,
}

impl SubmitPolicy {
    pub const DEFAULT: SubmitPolicy = SubmitPolicy {
        form_token_lifetime: Duration::hours(1),
        idempotency_retention: Duration::hours(24),
        idempotency_lease: Duration::seconds(60),
    };
}

/// Item and quantity of an order.
pub fn validate_order(item: &str, quantity: i64) -> Result<(), RuleViolation> {
    let chars = item.chars().count();
    if chars == 0 || chars > ITEM_MAX_CHARS || item.trim() != item {
        return Err(RuleViolation {
            reason: Reason::InvalidOrder,
            message: format!(
                "an item has 1 to {ITEM_MAX_CHARS} characters, without surrounding spaces"
            ),
        });
    }
    if !(QUANTITY_MIN..=QUANTITY_MAX).contains(&quantity) {
        return Err(RuleViolation {
            reason: Reason::InvalidOrder,
            message: format!("a quantity is {QUANTITY_MIN} to {QUANTITY_MAX}"),
        });
    }
    Ok(())
}

/// The key as sent. The draft defines it as a structured-field string (`"…"`); a bare token is
/// accepted too, since that is what most clients send.
pub fn parse_idempotency_key(raw: &str) -> Result<String, RuleViolation> {
    let key = raw.strip_prefix('"').and_then(|k| k.strip_suffix('"')).unwrap_or(raw);
    let printable = key.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_CHARS || !printable || key.contains('"') {
        return Err(RuleViolation {
            reason: Reason::InvalidIdempotencyKey,
            message: format!(
                "an Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters"
            ),
        });
    }
    Ok(key.to_owned())
}

/// What the server knows about an earlier request with the same key from the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub fingerprint: String,
    pub finished: bool,
    pub lease_until: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDecision {
    /// Past retention: forget it and treat the request as new.
    Expired,
    /// Same key, different request: a client bug, refused (`idempotency_key_reused`).
    Reused,
    /// The first request finished: send its stored response again.
    Replay,
    /// The first request is still being processed (`idempotency_key_in_use`).
    InFlight,
    /// The first request's lease ran out without finishing (a crash): this request takes over.
    TakeOver,
}

pub fn decide(record: &KeyRecord, fingerprint: &str, now: Timestamp) -> KeyDecision {
    if now >= record.expires_at {
        KeyDecision::Expired
    } else if record.fingerprint != fingerprint {
        KeyDecision::Reused
    } else if record.finished {
        KeyDecision::Replay
    } else if now < record.lease_until {
        KeyDecision::InFlight
    } else {
        KeyDecision::TakeOver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn key_decisions() {
        let record = |finished| KeyRecord {
            fingerprint: "abc".into(),
            finished,
            lease_until: T0 + Duration::seconds(60),
            expires_at: T0 + Duration::hours(24),
        };
        let cases = [
            (record(true), "abc", Duration::seconds(1), KeyDecision::Replay),
            (record(true), "abc", Duration::hours(23), KeyDecision::Replay),
            (record(true), "abc", Duration::hours(24), KeyDecision::Expired),
            (record(true), "xyz", Duration::seconds(1), KeyDecision::Reused),
            (record(false), "xyz", Duration::seconds(1), KeyDecision::Reused),
            (record(false), "abc", Duration::seconds(59), KeyDecision::InFlight),
            (record(false), "abc", Duration::seconds(60), KeyDecision::TakeOver),
            (record(false), "abc", Duration::hours(25), KeyDecision::Expired),
        ];
        for (record, fingerprint, after, expected) in cases {
            assert_eq!(
                decide(&record, fingerprint, T0 + after),
                expected,
                "{record:?} {fingerprint} +{after}"
            );
        }
    }

    #[test]
    fn keys() {
        let long = "k".repeat(256);
        let cases: [(&str, Option<&str>); 7] = [
            ("8e03978e-40d5-43e8-bc93-6894a57f9324", Some("8e03978e-40d5-43e8-bc93-6894a57f9324")),
            ("\"8e03978e\"", Some("8e03978e")),
            ("a b", Some("a b")),
            ("", None),
            ("\"\"", None),
            ("ключ", None),
            (&long, None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_idempotency_key(raw).ok().as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn orders() {
        let long = "x".repeat(101);
        let cases: [(&str, i64, bool); 7] = [
            ("tea", 1, true),
            ("green tea", 99, true),
            ("", 1, false),
            (" tea", 1, false),
            (&long, 1, false),
            ("tea", 0, false),
            ("tea", 100, false),
        ];
        for (item, quantity, ok) in cases {
            assert_eq!(validate_order(item, quantity).is_ok(), ok, "{item:?} × {quantity}");
        }
    }
}
