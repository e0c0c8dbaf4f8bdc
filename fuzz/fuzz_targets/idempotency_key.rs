//! The `Idempotency-Key` header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenlab_core::submit::{IDEMPOTENCY_KEY_MAX_CHARS, parse_idempotency_key};

fuzz_target!(|raw: &str| {
    if let Ok(key) = parse_idempotency_key(raw) {
        // What is stored is printable ASCII within the bound, never quoted, and a quoted form of
        // it parses to itself.
        assert!(!key.is_empty() && key.len() <= IDEMPOTENCY_KEY_MAX_CHARS);
        assert!(key.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(!key.contains('"'));
        assert_eq!(parse_idempotency_key(&format!("\"{key}\"")).ok(), Some(key));
    }
});
