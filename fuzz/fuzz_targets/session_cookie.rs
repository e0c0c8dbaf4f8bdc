//! A session cookie's value (`tl_session`, `tl_device`) as the session layer reads it before any
//! store is asked: tower-sessions' `Id::from_str`. A value that reads is one id, written back the
//! same way.
#![no_main]

use std::str::FromStr as _;

use libfuzzer_sys::fuzz_target;
use tower_sessions_core::session::Id;

fuzz_target!(|value: &str| {
    if let Ok(id) = Id::from_str(value) {
        let written = id.to_string();
        assert_eq!(written.len(), 22, "{written}");
        assert_eq!(Id::from_str(&written).ok(), Some(id));
    }
});
