//! A scheme's copy of its login in the session record (`session_auth`, `device_auth`), kept as one
//! JSON string rather than as a nested object.
//!
//! Why: tower-sessions holds a record as a map of `serde_json::Value` trees. Every load builds the
//! trees, and every `Session::get` clones one and converts the clone, so a nested object costs an
//! allocation per key and per string on each of those steps, and again when they are dropped. The
//! copy is read on every authenticated request of its scheme; as a string it is one allocation on
//! each step, parsed straight into its struct. Per call, counted by callgrind on a release build:
//! a device call went from 191 000 to 173 000 instructions, a session call from 154 000 to 145 000
//! (ADR 34).
//!
//! A copy written as an object, by a server from before this, is still read.
//!
//! Each check reads its scheme's copy, and the same text comes back on every call of a session
//! until the session is written back (once per write-back step, a minute by default, or at a DBSC
//! registration or refresh). [`ParsedByText`] remembers what a text parsed to, keyed by the whole
//! text: the record's data in the database store, and each scheme's copy ([`read_parsed`]), so a
//! call on a known session clones instead of parsing JSON and three RFC 3339 times again. They are
//! a pure function's results remembered by its whole input, so no instance behaves differently for
//! having seen a session before (ADR 36).
//!
//! In the stores, [`StoredData`] writes each copy as the JSON it holds rather than as a string of
//! it, and [`load_data`] reads it back into the string without a tree: a string of JSON inside the
//! record's JSON escaped every quote, and unescaping them on each load cost a device call 9 000
//! instructions (#14).

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use tower_sessions::Session;

use crate::error::ApiError;

/// The keys that hold a copy.
const KEYS: [&str; 2] = [crate::auth::session::AUTH_KEY, crate::auth::device::AUTH_KEY];

/// The copy under `key`, if the session holds one, parsed once per text (`parsed`).
pub async fn read_parsed<T: DeserializeOwned + Clone>(
    parsed: &ParsedByText<T>,
    session: &Session,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let Some(value) = session.get_value(key).await? else { return Ok(None) };
    let copy = match value {
        Value::String(text) => parsed.get_or_parse(text, |text| serde_json::from_str(text)),
        // A copy written as an object, by a server from before ADR 34: rare, not remembered.
        other => decode(other),
    };
    Ok(Some(copy.map_err(|err| fault(err, "reading", key))?))
}

/// What texts parsed to, remembered by the whole text, for texts that are parsed again and again:
/// a session record's data (`DbSessionStore`), a scheme's copy (`AppState`).
pub struct ParsedByText<V> {
    by_text: quick_cache::sync::Cache<String, V>,
}

/// About this many texts of each kind (quick_cache's bound is approximate, per shard); the texts
/// not read again are evicted first. A session's texts change once per write-back step, so this is
/// enough for every session an instance serves within a minute.
const PARSED_TEXTS: usize = 10_000;

impl<V: Clone> ParsedByText<V> {
    /// What `parse` makes of `text`: remembered from an earlier call with the same text, or parsed
    /// now and remembered. A text that does not parse is not remembered.
    pub fn get_or_parse<E>(
        &self,
        text: String,
        parse: impl FnOnce(&str) -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(parsed) = self.by_text.get(text.as_str()) {
            return Ok(parsed);
        }
        let parsed = parse(&text)?;
        self.by_text.insert(text, parsed.clone());
        Ok(parsed)
    }
}

impl<V: Clone> Default for ParsedByText<V> {
    fn default() -> Self {
        Self { by_text: quick_cache::sync::Cache::new(PARSED_TEXTS) }
    }
}

/// Stores `copy` under `key`; the session is saved at the end of the request.
pub async fn write<T: Serialize>(session: &Session, key: &str, copy: &T) -> Result<(), ApiError> {
    let text = serde_json::to_string(copy).map_err(|err| fault(err, "writing", key))?;
    session.insert_value(key, Value::String(text)).await?;
    Ok(())
}

fn fault(err: serde_json::Error, doing: &str, key: &str) -> ApiError {
    ApiError::Internal(anyhow::Error::new(err).context(format!("{doing} the session's {key}")))
}

/// A copy as the record holds it: a string, or an object from before.
pub fn decode<T: DeserializeOwned>(value: Value) -> serde_json::Result<T> {
    match value {
        Value::String(text) => serde_json::from_str(&text),
        other => serde_json::from_value(other),
    }
}

/// A session record's data as a store writes it: each copy embedded as the JSON it holds.
pub struct StoredData<'a>(pub &'a HashMap<String, Value>);

impl Serialize for StoredData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            let raw = match value {
                // Only an object, and nothing around it, goes in as JSON: that is exactly what is
                // read back as the same string (`load_data`). Anything else stays a string.
                Value::String(json) if KEYS.contains(&key.as_str()) => {
                    serde_json::from_str::<&RawValue>(json)
                        .ok()
                        .filter(|raw| raw.get().starts_with('{') && raw.get().len() == json.len())
                }
                _ => None,
            };
            match raw {
                Some(raw) => map.serialize_entry(key, raw)?,
                None => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

/// A session record's data as [`StoredData`] wrote it, or as an earlier server did (a copy as a
/// string of JSON, or as an object): each copy comes back as the string of JSON that
/// [`read_parsed`] expects.
pub fn load_data(json: &str) -> serde_json::Result<HashMap<String, Value>> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let data = deserialize_data(&mut deserializer)?;
    deserializer.end()?;
    Ok(data)
}

/// [`load_data`] as a field's `deserialize_with`.
pub fn deserialize_data<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<HashMap<String, Value>, D::Error> {
    deserializer.deserialize_map(DataVisitor)
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = HashMap<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session record's data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
        let mut data = HashMap::with_capacity(entries.size_hint().unwrap_or(4));
        while let Some(key) = entries.next_key::<String>()? {
            let value = if KEYS.contains(&key.as_str()) {
                let raw = entries.next_value::<Box<RawValue>>()?;
                if raw.get().starts_with('{') {
                    Value::String(Box::<str>::from(raw).into())
                } else {
                    serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?
                }
            } else {
                entries.next_value::<Value>()?
            };
            data.insert(key, value);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Copy {
        user_id: i64,
        username: String,
    }

    #[test]
    fn a_copy_is_read_whether_stored_as_a_string_or_as_an_object() {
        let expected = Copy { user_id: 7, username: "alice".to_owned() };
        let cases = [
            (
                "a string, as written now",
                Value::String(r#"{"user_id":7,"username":"alice"}"#.into()),
            ),
            ("an object, as written before", json!({"user_id": 7, "username": "alice"})),
        ];
        for (what, stored) in cases {
            assert_eq!(decode::<Copy>(stored).ok(), Some(expected.clone()), "{what}");
        }
    }

    #[test]
    fn a_text_is_parsed_once_and_only_the_very_same_text_is_answered_from_memory() {
        let parsed = ParsedByText::<Copy>::default();
        let parses = std::cell::Cell::new(0);
        let counted = |text: &str| {
            parses.set(parses.get() + 1);
            serde_json::from_str::<Copy>(text)
        };
        let alice = r#"{"user_id":7,"username":"alice"}"#;
        let alicf = r#"{"user_id":8,"username":"alicf"}"#;
        let broken = r#"{"user_id":9}"#;
        // (what, text, the parses counted after it, the user it gives)
        let cases = [
            ("a text seen for the first time", alice, 1, Some(7)),
            ("the same text again", alice, 1, Some(7)),
            ("as long, differing only near the end", alicf, 2, Some(8)),
            ("the first again", alice, 2, Some(7)),
            ("a text that does not parse", broken, 3, None),
            ("the same again: a failure is not remembered", broken, 4, None),
        ];
        for (what, text, parses_so_far, user_id) in cases {
            let got = parsed.get_or_parse(text.to_owned(), counted);
            assert_eq!(got.ok().map(|copy| copy.user_id), user_id, "{what}");
            assert_eq!(parses.get(), parses_so_far, "{what}");
        }
        // What comes back for a remembered text is what was remembered: plant something else.
        let planted = Copy { user_id: 99, username: "planted".to_owned() };
        parsed.by_text.insert(alice.to_owned(), planted.clone());
        assert_eq!(parsed.get_or_parse(alice.to_owned(), counted).ok(), Some(planted));
    }

    #[test]
    fn what_a_caller_does_with_a_remembered_record_stays_its_own() {
        let parsed = ParsedByText::<HashMap<String, Value>>::default();
        let text = r#"{"owner":{"user_id":7},"session_auth":{"user_id":7,"username":"alice"}}"#;
        let mut first = parsed.get_or_parse(text.to_owned(), load_data).expect("a record");
        first.insert("dbsc".to_owned(), json!({"bound": true}));
        if let Some(Value::Object(owner)) = first.get_mut("owner") {
            owner.insert("user_id".to_owned(), json!(8));
        }
        let again = parsed.get_or_parse(text.to_owned(), load_data).ok();
        assert_eq!(again, load_data(text).ok());
    }

    /// The copies derive no `PartialEq`: they are compared as the JSON they serialize to.
    fn json_of<T: Serialize>(copy: &T) -> Value {
        serde_json::to_value(copy).expect("serializable")
    }

    #[tokio::test]
    async fn every_scheme_copy_reads_back_as_written_whether_parsed_or_remembered() {
        use crate::auth::device::{DeviceAuth, DeviceFacts};
        use crate::auth::session::SessionAuth;
        use tokenlab_core::device::DeviceMode;
        use tokenlab_core::session::SessionTimes;

        let at = |seconds| time::OffsetDateTime::from_unix_timestamp(seconds).expect("a time");
        let times = SessionTimes {
            started_at: at(1_796_370_364),
            idle_expires_at: at(1_796_372_164),
            absolute_expires_at: at(1_796_413_564),
        };
        let session_auth =
            SessionAuth { user_id: 1, username: "alice".to_owned(), times, bound: None };
        let device_auth = |facts| DeviceAuth {
            user_id: 1,
            username: "alice".to_owned(),
            device_pk: 3,
            device_id: "phone-1".to_owned(),
            mode: DeviceMode::Hardened,
            token_digest: "57484f623ef7aab628fe78877cc9d476f06e3993911397b2ddc595682ad03fbd"
                .to_owned(),
            times,
            facts,
        };
        let facts = DeviceFacts {
            name: "phone".to_owned(),
            created_at: 1_796_370_364,
            last_seen_at: 1_796_370_364,
            expires_at: Some(1_801_554_364),
        };
        let sessions = ParsedByText::<SessionAuth>::default();
        let devices = ParsedByText::<DeviceAuth>::default();
        let session = Session::new(None, std::sync::Arc::new(Unreached), None);
        for (what, device) in [
            ("a device copy with its facts", device_auth(Some(facts))),
            ("a device copy from before the facts", device_auth(None)),
        ] {
            write(&session, "session_auth", &session_auth).await.expect("written");
            write(&session, "device_auth", &device).await.expect("written");
            for attempt in ["parsed", "remembered"] {
                let read = read_parsed(&sessions, &session, "session_auth").await;
                let read = read.ok().flatten().expect("a session copy");
                assert_eq!(json_of(&read), json_of(&session_auth), "{what}: {attempt}");
                let read = read_parsed(&devices, &session, "device_auth").await;
                let read = read.ok().flatten().expect("a device copy");
                assert_eq!(json_of(&read), json_of(&device), "{what}: {attempt}");
            }
        }
    }

    #[test]
    fn something_else_under_the_key_is_an_error_not_a_copy() {
        let cases = [
            ("a number", json!(7)),
            ("a string that is not the copy", Value::String("alice".into())),
            ("an object missing a field", json!({"user_id": 7})),
        ];
        for (what, stored) in cases {
            assert!(decode::<Copy>(stored).is_err(), "{what}");
        }
    }

    #[test]
    fn a_store_writes_each_copy_as_the_json_it_holds_and_reads_it_back_as_a_string() {
        let session_copy = r#"{"user_id":7,"username":"alice \"al\" ünïcode"}"#;
        let device_copy = r#"{"user_id":7,"facts":{"name":"phone","expires_at":null}}"#;
        let data: HashMap<String, Value> = [
            ("session_auth".to_owned(), Value::String(session_copy.to_owned())),
            ("device_auth".to_owned(), Value::String(device_copy.to_owned())),
            ("owner".to_owned(), json!({"user_id": 7, "handle": "ab"})),
            ("other".to_owned(), Value::String(r#"{"not":"a copy"}"#.to_owned())),
        ]
        .into();
        let stored = serde_json::to_string(&StoredData(&data)).expect("encoded");
        let on_disk: HashMap<String, Value> = serde_json::from_str(&stored).expect("plain JSON");
        assert_eq!(on_disk["session_auth"], serde_json::from_str::<Value>(session_copy).unwrap());
        assert_eq!(on_disk["device_auth"], serde_json::from_str::<Value>(device_copy).unwrap());
        assert_eq!(on_disk["other"], data["other"], "only copies are embedded");
        assert_eq!(load_data(&stored).ok(), Some(data));
    }

    #[test]
    fn a_store_reads_every_form_a_copy_was_ever_written_in() {
        let copy = r#"{"user_id":7,"username":"alice"}"#;
        let cases = [
            ("embedded, as stores write it now", format!(r#"{{"session_auth":{copy}}}"#)),
            (
                "a string of JSON, as ADR 34 first stored it",
                serde_json::to_string(&json!({"session_auth": copy})).unwrap(),
            ),
            (
                "an object, from before ADR 34",
                r#"{"session_auth":{"user_id":7,"username":"alice"}}"#.to_owned(),
            ),
            ("with spaces", r#"{ "session_auth" : { "user_id":7, "username":"alice" } }"#.into()),
        ];
        for (what, stored) in cases {
            let data = load_data(&stored).unwrap_or_else(|err| panic!("{what}: {err}"));
            let read = decode::<Copy>(data["session_auth"].clone());
            assert_eq!(read.ok(), Some(Copy { user_id: 7, username: "alice".into() }), "{what}");
        }
    }

    #[test]
    fn what_is_not_a_json_object_stays_a_string_and_what_is_not_a_record_is_refused() {
        for text in ["not json {", "[1]", "null", "7", r#""x""#, r#"  {"a":1}"#, "{}\n"] {
            let data: HashMap<String, Value> =
                [("session_auth".to_owned(), Value::String(text.to_owned()))].into();
            let stored = serde_json::to_string(&StoredData(&data)).expect("encoded");
            assert_eq!(load_data(&stored).ok(), Some(data), "{text:?}");
        }
        for broken in ["", "[]", r#"{"session_auth":}"#, r#"{"session_auth":{"a":1}"#, "{} {}"] {
            assert!(load_data(broken).is_err(), "{broken:?}");
        }
    }

    /// A store the test's session never reaches: a session without an id is new, and neither
    /// `insert_value` nor `get_value` loads or saves it.
    #[derive(Debug, Clone)]
    struct Unreached;

    #[async_trait::async_trait]
    impl tower_sessions::SessionStore for Unreached {
        async fn save(&self, _: &Record) -> session_store::Result<()> {
            Err(session_store::Error::Backend("the store was reached".into()))
        }
        async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
            Err(session_store::Error::Backend("the store was reached".into()))
        }
        async fn delete(&self, _: &Id) -> session_store::Result<()> {
            Err(session_store::Error::Backend("the store was reached".into()))
        }
    }

    #[tokio::test]
    async fn what_is_written_is_read_back_and_stored_as_one_string() {
        let session = Session::new(None, std::sync::Arc::new(Unreached), None);
        let copy = Copy { user_id: 7, username: "alice".to_owned() };
        write(&session, "auth", &copy).await.expect("written");
        assert!(matches!(session.get_value("auth").await, Ok(Some(Value::String(_)))));
        let parsed = ParsedByText::default();
        for attempt in ["parsed", "remembered"] {
            let read = read_parsed::<Copy>(&parsed, &session, "auth").await;
            assert_eq!(read.ok().flatten(), Some(copy.clone()), "{attempt}");
        }
        assert_eq!(read_parsed::<Copy>(&parsed, &session, "absent").await.ok().flatten(), None);
    }
}
