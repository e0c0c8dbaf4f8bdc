//! Core's request rules as JSON Schema, for the API document (the `openapi` feature only).
//!
//! A schema-driven client or fuzzer reads the document, not this crate: a limit the server enforces
//! but the document does not state looks to it like a valid request refused. So each schema here is
//! built from the constant, the enum or the character set the rule itself uses, and the character
//! sets are checked against the rule's own function for every `char` (tests below), so the
//! document and the server cannot drift apart.

use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};

use crate::Reason;
use crate::account::{
    PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, USERNAME_MAX_CHARS, USERNAME_MIN_CHARS,
};
use crate::bearer::TokenPolicy;
use crate::clock::{ManualClock, OffsetClock};
use crate::device::{DEVICE_ID_MAX_CHARS, DEVICE_ID_MIN_CHARS, DeviceMode};
use crate::submit::{IDEMPOTENCY_KEY_MAX_CHARS, ITEM_MAX_CHARS, QUANTITY_MAX, QUANTITY_MIN};
use crate::wire::OAuthErrorCode;

/// Every device mode, for the request's enum.
pub const DEVICE_MODES: [DeviceMode; 3] =
    [DeviceMode::AsWritten, DeviceMode::Hardened, DeviceMode::Bound];

/// A set of characters as inclusive ranges: rendered into a pattern, and tested against the rule.
struct Class(&'static [(char, char)]);

impl Class {
    #[cfg(test)]
    fn contains(&self, c: char) -> bool {
        self.0.iter().any(|&(low, high)| (low..=high).contains(&c))
    }

    /// `[…]`, or `[^…]` when `negated`, in the syntax ECMA-262, Python's `re` and Rust's `regex`
    /// read alike.
    fn render(&self, negated: bool) -> String {
        fn one(c: char) -> String {
            match c {
                '\\' | ']' | '[' | '^' | '-' => format!("\\{c}"),
                c if c.is_ascii_graphic() || c == ' ' => c.to_string(),
                c => format!("\\u{:04x}", u32::from(c)),
            }
        }
        let mut class = String::from(if negated { "[^" } else { "[" });
        for &(low, high) in self.0 {
            class.push_str(&one(low));
            if high != low {
                class.push('-');
                class.push_str(&one(high));
            }
        }
        class.push(']');
        class
    }
}

/// `account::validate_username`: the first character, then the others.
const USERNAME_FIRST: Class = Class(&[('a', 'z'), ('0', '9')]);
const USERNAME_REST: Class = Class(&[('a', 'z'), ('0', '9'), ('_', '_'), ('.', '.'), ('-', '-')]);
/// `device::validate_device_id`.
const DEVICE_ID_CHARS: Class = Class(&[('A', 'Z'), ('a', 'z'), ('0', '9'), ('-', '-'), ('_', '_')]);
/// `submit::parse_idempotency_key`: printable ASCII but `"`, which only quotes the whole key.
const KEY_INNER: Class = Class(&[(' ', '!'), ('#', '~')]);
/// The same without the space, which HTTP strips from either end of an unquoted header value.
const KEY_EDGE: Class = Class(&[('!', '!'), ('#', '~')]);
/// What `str::trim` removes (Unicode `White_Space`): an order's item neither starts nor ends
/// with one.
const WHITESPACE: Class = Class(&[
    ('\t', '\r'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
]);

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

/// A name for a new account.
pub fn username() -> Object {
    string()
        .min_length(Some(USERNAME_MIN_CHARS))
        .max_length(Some(USERNAME_MAX_CHARS))
        .pattern(Some(format!(
            "^{}{}*$",
            USERNAME_FIRST.render(false),
            USERNAME_REST.render(false)
        )))
        .description(Some(Reason::InvalidUsername.explanation()))
        .examples(["bob"])
        .build()
}

/// A password being set: counted in Unicode characters, any character, never trimmed.
pub fn new_password() -> Object {
    string()
        .min_length(Some(PASSWORD_MIN_CHARS))
        .max_length(Some(PASSWORD_MAX_CHARS))
        .description(Some(Reason::WeakPassword.explanation()))
        .examples(["correct horse battery staple"])
        .build()
}

/// A password being checked. No account has a longer one, so a longer one is refused as wrong
/// before any hashing.
pub fn password() -> Object {
    string()
        .max_length(Some(PASSWORD_MAX_CHARS))
        .description(Some("The account's password, exactly as it was set."))
        .examples(["wonderland-demo"])
        .build()
}

/// The client's name for a device.
pub fn device_id() -> Object {
    string()
        .min_length(Some(DEVICE_ID_MIN_CHARS))
        .max_length(Some(DEVICE_ID_MAX_CHARS))
        .pattern(Some(format!("^{}+$", DEVICE_ID_CHARS.render(false))))
        .description(Some(Reason::InvalidDeviceId.explanation()))
        .examples(["dev-4f3a9c21d0e8"])
        .build()
}

/// `as_written` (the article's token: the device id itself), `hardened`, or `bound` (no token: a
/// DPoP proof by the device's key with every request).
pub fn device_mode() -> Object {
    string()
        .enum_values(Some(DEVICE_MODES.map(DeviceMode::as_str)))
        .examples([DeviceMode::Hardened.as_str()])
        .build()
}

/// An `Idempotency-Key` header as the server reads it: a bare key, or one quoted as a
/// structured-field string (inside the quotes, spaces may also start or end it).
pub fn idempotency_key() -> Object {
    let (edge, inner) = (KEY_EDGE.render(false), KEY_INNER.render(false));
    let between = IDEMPOTENCY_KEY_MAX_CHARS.saturating_sub(2);
    string()
        .min_length(Some(1))
        .max_length(Some(IDEMPOTENCY_KEY_MAX_CHARS + 2))
        .pattern(Some(format!(
            "^(?:{edge}(?:{inner}{{0,{between}}}{edge})?|\"{inner}{{1,{IDEMPOTENCY_KEY_MAX_CHARS}}}\")$"
        )))
        .description(Some(Reason::InvalidIdempotencyKey.explanation()))
        .examples(["order-2026-01-01-0001"])
        .build()
}

/// What an order names.
pub fn order_item() -> Object {
    let edge = WHITESPACE.render(true);
    string()
        .min_length(Some(1))
        .max_length(Some(ITEM_MAX_CHARS))
        .pattern(Some(format!("^{edge}(?:[\\s\\S]*{edge})?$")))
        .description(Some(format!(
            "1 to {ITEM_MAX_CHARS} characters, not starting or ending with a space."
        )))
        .examples(["green tea"])
        .build()
}

/// How many of it.
pub fn order_quantity() -> Object {
    integer().minimum(Some(QUANTITY_MIN)).maximum(Some(QUANTITY_MAX)).examples([2]).build()
}

/// `POST /api/demo/clock`: move forward by a number of seconds, or go back to the real time.
pub fn clock_change() -> Schema {
    let advance = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("advance"))
        .property(
            "advance_seconds",
            integer()
                .minimum(Some(1))
                .maximum(Some(OffsetClock::<ManualClock>::MAX_ADVANCE_SECONDS))
                .description(Some(
                    "Seconds to move forward, up to a year per step; the clock stops ten years \
                     ahead of the real time (`invalid_clock_advance`).",
                ))
                .examples([1860]),
        )
        .required("advance_seconds")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let reset = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("reset"))
        .property(
            "reset",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true]))
                .description(Some("Back to the real time.")),
        )
        .required("reset")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    OneOfBuilder::new()
        .item(advance)
        .item(reset)
        .description(Some("Exactly one of the two."))
        .build()
        .into()
}

/// `POST /api/oauth/token`: one of the two grants, each with what it needs (RFC 6749 §4.3.2 and
/// §6). The server reads any form or JSON object, so that whatever falls outside these is answered
/// with RFC 6749's own errors: a missing field `invalid_request`, another grant
/// `unsupported_grant_type`. The browser variant sends no `refresh_token` and has it read from
/// the `tl_refresh` cookie instead; that request is outside this schema, like every cookie-borne
/// credential of the document.
pub fn token_request() -> Schema {
    let grant = |name: &'static str| {
        string().enum_values(Some([name])).description(Some("Which grant this request is."))
    };
    let password_grant = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("password"))
        .property("grant_type", grant("password"))
        .required("grant_type")
        .property("username", string().max_length(Some(USERNAME_MAX_CHARS)).examples(["alice"]))
        .required("username")
        .property("password", password())
        .required("password");
    let refresh_grant = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("refresh_token"))
        .property("grant_type", grant("refresh_token"))
        .required("grant_type")
        .property(
            "refresh_token",
            string().description(Some(
                "The refresh token to exchange; the answer carries the one that replaces it.",
            )),
        )
        .required("refresh_token");
    OneOfBuilder::new()
        .item(password_grant)
        .item(refresh_grant)
        .description(Some(
            "RFC 6749 §4.3.2 / §6, form-encoded as the RFC requires; JSON is accepted too.",
        ))
        .build()
        .into()
}

/// `POST /api/oauth/revoke`: RFC 7009 §2.2 answers 200 whatever the body holds, so the document
/// constrains nothing. A `token` field (form or JSON) names the refresh token to revoke; without
/// one, the `tl_refresh` cookie's.
pub fn revoke_request() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "`token=…` (form) or `{\"token\": \"…\"}` (JSON): the refresh token whose family \
             ends. Any other body, or none, revokes the `tl_refresh` cookie's family, or nothing.",
        ))
        .build()
        .into()
}

/// A token-policy preset's name.
pub fn policy_name() -> Object {
    string()
        .enum_values(Some(TokenPolicy::PRESETS.map(|p| p.name)))
        .description(Some("One of the presets `GET /api/demo/policy` lists."))
        .examples([TokenPolicy::RECOMMENDED.name])
        .build()
}

/// A reason code: every one of the table's.
pub fn reason() -> Object {
    string()
        .enum_values(Some(Reason::ALL.iter().map(|r| r.code())))
        .description(Some("Stable, machine-readable: branch on this."))
        .build()
}

/// RFC 6749 §5.2's `error` codes the token endpoint answers with.
pub fn oauth_error_code() -> Object {
    string()
        .enum_values(Some(OAuthErrorCode::ALL.map(OAuthErrorCode::as_str)))
        .examples([OAuthErrorCode::InvalidGrant.as_str()])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::validate_username;
    use crate::device::validate_device_id;
    use crate::submit::{parse_idempotency_key, validate_order};

    fn every_char() -> impl Iterator<Item = char> {
        (0..=u32::from(char::MAX)).filter_map(char::from_u32)
    }

    #[test]
    fn username_characters_agree_with_the_rule() {
        for c in every_char() {
            let first = validate_username(&format!("{c}ab")).is_ok();
            assert_eq!(USERNAME_FIRST.contains(c), first, "{c:?} first");
            let later = validate_username(&format!("ab{c}")).is_ok();
            assert_eq!(USERNAME_REST.contains(c), later, "{c:?} later");
        }
        let shortest = "a".repeat(USERNAME_MIN_CHARS);
        assert!(validate_username(&shortest).is_ok());
        assert!(validate_username(&shortest[1..]).is_err());
        assert_eq!(
            username().pattern.as_deref(),
            Some("^[a-z0-9][a-z0-9_.\\-]*$"),
            "rendered as both readers read it"
        );
    }

    #[test]
    fn device_ids_agree_with_the_rule() {
        let body = "a".repeat(DEVICE_ID_MIN_CHARS - 1);
        for c in every_char() {
            let accepted = validate_device_id(&format!("{body}{c}")).is_ok();
            assert_eq!(DEVICE_ID_CHARS.contains(c), accepted, "{c:?}");
        }
        for (length, ok) in [
            (DEVICE_ID_MIN_CHARS - 1, false),
            (DEVICE_ID_MIN_CHARS, true),
            (DEVICE_ID_MAX_CHARS, true),
            (DEVICE_ID_MAX_CHARS + 1, false),
        ] {
            assert_eq!(validate_device_id(&"a".repeat(length)).is_ok(), ok, "{length}");
        }
        assert_eq!(device_id().pattern.as_deref(), Some("^[A-Za-z0-9\\-_]+$"));
    }

    #[test]
    fn idempotency_key_characters_agree_with_the_rule() {
        for c in every_char() {
            let inside = parse_idempotency_key(&format!("a{c}b")).is_ok();
            assert_eq!(KEY_INNER.contains(c), inside, "{c:?} inside");
            let quoted = parse_idempotency_key(&format!("\"{c}\"")).is_ok();
            assert_eq!(KEY_INNER.contains(c), quoted, "{c:?} quoted");
            assert_eq!(KEY_EDGE.contains(c), KEY_INNER.contains(c) && c != ' ', "{c:?} edge");
        }
        let longest = "k".repeat(IDEMPOTENCY_KEY_MAX_CHARS);
        assert!(parse_idempotency_key(&longest).is_ok());
        assert!(parse_idempotency_key(&format!("\"{longest}\"")).is_ok());
        assert!(parse_idempotency_key(&format!("{longest}k")).is_err());
    }

    #[test]
    fn an_item_is_refused_for_exactly_the_whitespace_trim_removes() {
        for c in every_char() {
            assert_eq!(WHITESPACE.contains(c), c.is_whitespace(), "{c:?}");
            let ok = !c.is_whitespace();
            assert_eq!(validate_order(&format!("{c}x"), 1).is_ok(), ok, "{c:?} first");
            assert_eq!(validate_order(&format!("x{c}"), 1).is_ok(), ok, "{c:?} last");
        }
        assert!(validate_order(&"x".repeat(ITEM_MAX_CHARS), 1).is_ok());
        assert!(validate_order(&"x".repeat(ITEM_MAX_CHARS + 1), 1).is_err());
        assert!(validate_order("", 1).is_err());
    }

    #[test]
    fn numeric_bounds_agree_with_the_rules() {
        for (quantity, ok) in [
            (QUANTITY_MIN - 1, false),
            (QUANTITY_MIN, true),
            (QUANTITY_MAX, true),
            (QUANTITY_MAX + 1, false),
        ] {
            assert_eq!(validate_order("tea", quantity).is_ok(), ok, "{quantity}");
        }
        let clock =
            OffsetClock::new(ManualClock::new(time::macros::datetime!(2026-01-01 00:00 UTC)));
        let most = OffsetClock::<ManualClock>::MAX_ADVANCE_SECONDS;
        assert!(clock.advance(0).is_err(), "the smallest step is one second");
        assert!(clock.advance(most + 1).is_err());
        assert!(clock.advance(1).is_ok());
        assert!(clock.advance(most).is_ok());
    }

    #[test]
    fn enums_list_every_value_the_server_accepts() {
        for mode in DEVICE_MODES {
            assert_eq!(DeviceMode::parse(mode.as_str()), Some(mode));
        }
        for preset in TokenPolicy::PRESETS {
            assert_eq!(TokenPolicy::by_name(preset.name).map(|p| p.name), Some(preset.name));
        }
        assert_eq!(reason().enum_values.map(|v| v.len()), Some(Reason::ALL.len()));
    }
}
