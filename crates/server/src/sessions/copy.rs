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
//! until its once-a-minute write-back changes it. [`Parsed`] remembers what a text parsed to, keyed
//! by the whole text, so a call on a known session clones a struct instead of parsing JSON and
//! three RFC 3339 times again: a pure function's results, remembered by its input, so no instance
//! behaves differently for having seen a session before (ADR 36).
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

/// The copy under `key`, if the session holds one.
pub async fn read<T: DeserializeOwned>(
    session: &Session,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let Some(value) = session.get_value(key).await? else { return Ok(None) };
    let copy = decode(value).map_err(|err| fault(err, "reading", key))?;
    Ok(Some(copy))
}

/// The copy under `key`, if the session holds one, parsed once per text (`parsed`).
pub async fn read_parsed<T: DeserializeOwned + Clone>(
    parsed: &Parsed<T>,
    session: &Session,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let Some(value) = session.get_value(key).await? else { return Ok(None) };
    let copy = parsed.decode(value).map_err(|err| fault(err, "reading", key))?;
    Ok(Some(copy))
}

/// Copies of one kind already parsed, by the text they were parsed from.
pub struct Parsed<T> {
    by_text: quick_cache::sync::Cache<Box<str>, T>,
}

impl<T: DeserializeOwned + Clone> Parsed<T> {
    /// Enough for every session of a busy instance within a minute (a session's copy changes once
    /// a minute at most); beyond it the least recently used go first, to be parsed again.
    pub const CAPACITY: usize = 10_000;

    pub fn new() -> Self {
        Self { by_text: quick_cache::sync::Cache::new(Self::CAPACITY) }
    }

    /// [`decode`], remembered: only a copy stored as a string is, as every copy is written now.
    pub fn decode(&self, value: Value) -> serde_json::Result<T> {
        let Value::String(text) = value else { return serde_json::from_value(value) };
        if let Some(copy) = self.by_text.get(text.as_str()) {
            return Ok(copy);
        }
        let copy: T = serde_json::from_str(&text)?;
        self.by_text.insert(text.into_boxed_str(), copy.clone());
        Ok(copy)
    }
}

impl<T: DeserializeOwned + Clone> Default for Parsed<T> {
    fn default() -> Self {
        Self::new()
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
/// string of JSON, or as an object): each copy comes back as the string of JSON `read` expects.
pub fn load_data(json: &str) -> serde_json::Result<HashMap<String, Value>> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let data = deserialize_data(&mut deserializer)?;
    deserializer.end()?;
    Ok(data)
}

/// Records' data already loaded, by the text they were loaded from: the same text comes back on
/// every call of a session until it is written, at most once a minute (ADR 36). A record's data
/// cloned from here costs a tenth of parsing it again; see [`Parsed`] for why remembering by the
/// whole text changes nothing but the cost.
pub struct LoadedData {
    by_text: quick_cache::sync::Cache<Box<str>, HashMap<String, Value>>,
}

impl LoadedData {
    /// Enough for every session of a busy instance within a minute, as for [`Parsed`].
    pub const CAPACITY: usize = 10_000;

    /// [`load_data`], remembered.
    pub fn load(&self, json: String) -> serde_json::Result<HashMap<String, Value>> {
        if let Some(data) = self.by_text.get(json.as_str()) {
            return Ok(data);
        }
        let data = load_data(&json)?;
        self.by_text.insert(json.into_boxed_str(), data.clone());
        Ok(data)
    }
}

impl Default for LoadedData {
    fn default() -> Self {
        Self { by_text: quick_cache::sync::Cache::new(Self::CAPACITY) }
    }
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
    fn a_remembered_copy_is_what_parsing_its_text_gives() {
        let parsed = Parsed::<Copy>::new();
        let alice = r#"{"user_id":7,"username":"alice"}"#;
        let bob = r#"{"user_id":8,"username":"bob"}"#;
        let cases = [
            ("a text seen for the first time", Value::String(alice.into()), Some(7)),
            ("the same text again, remembered", Value::String(alice.into()), Some(7)),
            ("another text", Value::String(bob.into()), Some(8)),
            ("the first again, after another", Value::String(alice.into()), Some(7)),
            ("an object, as written before", json!({"user_id": 9, "username": "carol"}), Some(9)),
            ("a text that is no copy", Value::String(r#"{"user_id":7}"#.into()), None),
            ("the same text again: still no copy", Value::String(r#"{"user_id":7}"#.into()), None),
        ];
        for (what, stored, user_id) in cases {
            let fresh = decode::<Copy>(stored.clone()).ok();
            let remembered = parsed.decode(stored).ok();
            assert_eq!(remembered, fresh, "{what}");
            assert_eq!(remembered.map(|copy| copy.user_id), user_id, "{what}");
        }
        assert_eq!(parsed.by_text.len(), 2, "only the copies stored as text, once each");
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
    fn a_remembered_record_is_what_loading_its_text_gives() {
        let loaded = LoadedData::default();
        let session = r#"{"owner":{"user_id":7},"session_auth":{"user_id":7,"username":"alice"}}"#;
        let device = r#"{"device_auth":{"user_id":8,"facts":{"name":"phone"}},"owner":{"x":[1]}}"#;
        let cases = [
            ("a text seen for the first time", session),
            ("the same text again, remembered", session),
            ("another text", device),
            ("the first again, after another", session),
            ("not a record", "[]"),
            ("not a record, again", "[]"),
        ];
        for (what, text) in cases {
            let fresh = load_data(text).ok();
            assert_eq!(loaded.load(text.to_owned()).ok(), fresh, "{what}");
        }
        assert_eq!(loaded.by_text.len(), 2, "only the records that loaded, once each");
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
        assert_eq!(read::<Copy>(&session, "auth").await.ok().flatten(), Some(copy));
        assert_eq!(read::<Copy>(&session, "absent").await.ok().flatten(), None);
    }
}
