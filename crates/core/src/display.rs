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

#[cfg(test)]
mod tests {
    use super::*;

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
