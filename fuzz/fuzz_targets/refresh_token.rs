//! The form of a presented token (`tokenlab_core::random::decode_token`): what the server checks a
//! refresh token against before it looks it up, and how it writes every token it issues.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenlab_core::random::{SECRET_BYTES, TOKEN_CHARS, decode_token, encode_token};

fuzz_target!(|input: &[u8]| {
    if let Ok(text) = std::str::from_utf8(input)
        && let Some(bytes) = decode_token(text)
    {
        // Exactly one text stands for a secret: the one the server writes.
        assert_eq!(text.len(), TOKEN_CHARS);
        assert_eq!(encode_token(&bytes), text);
    }
    if let Ok(bytes) = <[u8; SECRET_BYTES]>::try_from(input) {
        let text = encode_token(&bytes);
        assert_eq!(decode_token(&text), Some(bytes));
    }
});
