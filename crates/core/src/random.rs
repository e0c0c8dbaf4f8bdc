//! Randomness as an injected dependency, like time.
//!
//! Every secret tokenlab issues (session ids, and the tokens of the later schemes) is drawn from a
//! [`SecretSource`]. The server's source is the operating system's CSPRNG; tests may substitute
//! their own to make a run reproducible.

/// Bytes per secret: 256 bits, comfortably past the 128 bits OWASP asks of session identifiers.
pub const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSourceError(pub String);

impl std::fmt::Display for SecretSourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no randomness available: {}", self.0)
    }
}

impl std::error::Error for SecretSourceError {}

pub trait SecretSource: Send + Sync {
    /// Fills `dest` with unpredictable bytes, or fails; never returns predictable ones.
    fn fill(&self, dest: &mut [u8]) -> Result<(), SecretSourceError>;
}

/// Characters of a token as tokenlab issues it (refresh tokens, hardened device tokens, form
/// tokens): [`SECRET_BYTES`] as lowercase hex.
pub const TOKEN_CHARS: usize = 2 * SECRET_BYTES;

/// A secret's text form: lowercase hex, URL-safe and header-safe as it is.
pub fn encode_token(bytes: &[u8; SECRET_BYTES]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(TOKEN_CHARS);
    for byte in bytes {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text
}

/// The secret a presented token stands for, if it has the one form [`encode_token`] writes;
/// anything else (another length, upper case, a non-hex character) cannot be a token of ours and
/// is refused before any lookup.
pub fn decode_token(text: &str) -> Option<[u8; SECRET_BYTES]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if text.len() != TOKEN_CHARS {
        return None;
    }
    let mut bytes = [0u8; SECRET_BYTES];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_only_their_own_form_decodes() {
        let bytes: [u8; SECRET_BYTES] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let text = encode_token(&bytes);
        assert_eq!(text.len(), TOKEN_CHARS);
        assert_eq!(decode_token(&text), Some(bytes));
        let zero = "0".repeat(TOKEN_CHARS);
        let refused = [
            String::new(),
            text[1..].to_owned(),
            format!("{text}0"),
            text.to_uppercase(),
            format!("g{}", &text[1..]),
            format!("{} ", &text[1..]),
            format!("é{}", &zero[2..]),
        ];
        for case in refused {
            assert_eq!(decode_token(&case), None, "{case:?}");
        }
        assert_eq!(decode_token(&zero), Some([0; SECRET_BYTES]));
        assert_eq!(encode_token(&[0xff; SECRET_BYTES]), "f".repeat(TOKEN_CHARS));
    }
}
