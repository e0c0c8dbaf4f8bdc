//! How secrets are shown on screen and in logs: enough to tell two apart, never enough to use one.

/// Keeps the first four characters of a secret and its length.
///
/// Four characters of a 256-bit random token leave 232 unknown bits; the length tells a learner
/// which kind of token they are looking at. Short values are hidden entirely, since four characters
/// of an eight-character secret would be half of it.
pub fn mask_secret(secret: &str) -> String {
    let len = secret.chars().count();
    if len < 16 {
        return format!("•••• ({len} chars)");
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}•••• ({len} chars)")
}

/// Masks the credential in an `Authorization` header value but keeps its scheme visible.
pub fn mask_authorization(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, credential)) => format!("{scheme} {}", mask_secret(credential)),
        None => mask_secret(value),
    }
}

/// How much of a stored hash the lab's inspector shows: enough to tell rows apart and to follow a
/// parent to its child, far too little to look anything up (32 of 256 bits).
pub const HASH_PREFIX_CHARS: usize = 8;

/// `3fa2c1d0…`: the start of a stored hash, for display.
pub fn hash_prefix(hash: &str) -> String {
    let head: String = hash.chars().take(HASH_PREFIX_CHARS).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_prefixes() {
        let cases = [
            ("3fa2c1d0aa5b8e7f3fa2c1d0aa5b8e7f3fa2c1d0aa5b8e7f3fa2c1d0aa5b8e7f", "3fa2c1d0…"),
            ("abc", "abc…"),
            ("", "…"),
        ];
        for (hash, expected) in cases {
            assert_eq!(hash_prefix(hash), expected, "{hash:?}");
        }
    }

    #[test]
    fn masks() {
        let cases = [
            ("", "•••• (0 chars)"),
            ("short", "•••• (5 chars)"),
            ("0123456789abcdef", "0123•••• (16 chars)"),
            ("eyJhbGciOiJFZERTQSJ9.payload.sig", "eyJh•••• (32 chars)"),
        ];
        for (secret, expected) in cases {
            assert_eq!(mask_secret(secret), expected, "{secret:?}");
        }
    }

    #[test]
    fn authorization_keeps_scheme() {
        let cases = [
            ("Bearer 0123456789abcdefXYZ", "Bearer 0123•••• (19 chars)"),
            ("Basic dXNlcjpwYXNz", "Basic •••• (12 chars)"),
            ("opaque-token-without-scheme", "opaq•••• (27 chars)"),
        ];
        for (value, expected) in cases {
            assert_eq!(mask_authorization(value), expected, "{value:?}");
        }
    }
}
