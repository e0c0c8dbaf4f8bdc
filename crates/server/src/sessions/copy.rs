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

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower_sessions::Session;

use crate::error::ApiError;

/// The copy under `key`, if the session holds one.
pub async fn read<T: DeserializeOwned>(
    session: &Session,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let Some(value) = session.get_value(key).await? else { return Ok(None) };
    let copy = decode(value).map_err(|err| fault(err, "reading", key))?;
    Ok(Some(copy))
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
