//! What makes a username and a password acceptable.
//!
//! The browser shows these rules before submitting and the server enforces them; both call the
//! functions here so the two can never disagree.

use crate::Reason;

pub const USERNAME_MIN_CHARS: usize = 3;
pub const USERNAME_MAX_CHARS: usize = 32;
/// NIST SP 800-63B: at least 8 characters, and allow long passphrases.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// The upper bound keeps a request from making the server hash megabytes.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A username that passed [`validate_username`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub reason: Reason,
    pub message: String,
}

/// Usernames are lower-case ASCII so that two accounts can never look alike (`alice` / `Alice` /
/// `аlice` with a Cyrillic a). Nothing is silently changed: a name that breaks a rule is refused
/// with the rule it broke.
pub fn validate_username(raw: &str) -> Result<Username, RuleViolation> {
    let violation = |message: String| RuleViolation { reason: Reason::InvalidUsername, message };
    let chars = raw.chars().count();
    if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&chars) {
        return Err(violation(format!(
            "a username has {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters"
        )));
    }
    if !raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)) {
        return Err(violation("a username uses only a-z, 0-9, '_', '.' and '-'".to_owned()));
    }
    if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(violation("a username starts with a letter or a digit".to_owned()));
    }
    Ok(Username(raw.to_owned()))
}

/// Passwords are counted in Unicode characters, accept any character and are never trimmed: a
/// password with a trailing space is a different password.
pub fn validate_password(raw: &str) -> Result<(), RuleViolation> {
    let chars = raw.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(RuleViolation {
            reason: Reason::WeakPassword,
            message: format!(
                "a password has {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters (this one has {chars})"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let max = "x".repeat(32);
        let too_long = "x".repeat(33);
        let cases: &[(&str, bool)] = &[
            ("alice", true),
            ("bob_2", true),
            ("a.b-c", true),
            ("007", true),
            ("ab", false),
            (&max, true),
            (&too_long, false),
            ("Alice", false),
            ("аlice", false), // Cyrillic a
            ("al ice", false),
            (" alice", false),
            ("_alice", false),
            ("", false),
        ];
        for (name, ok) in cases {
            let result = validate_username(name);
            assert_eq!(result.is_ok(), *ok, "{name:?}: {result:?}");
            if let Err(v) = result {
                assert_eq!(v.reason, Reason::InvalidUsername);
            }
        }
    }

    #[test]
    fn passwords() {
        let (max, too_long, max_accented) = ("a".repeat(128), "a".repeat(129), "é".repeat(128));
        let cases: &[(&str, bool)] = &[
            ("1234567", false),
            ("12345678", true),
            ("pässwörd", true),
            ("密码密码密码密码", true), // 8 characters, 24 bytes
            ("密码密码密码密", false),
            ("       x", true), // spaces count and are kept
            (&max, true),
            (&too_long, false),
            (&max_accented, true), // 256 bytes, 128 characters
        ];
        for (password, ok) in cases {
            let result = validate_password(password);
            assert_eq!(result.is_ok(), *ok, "{password:?}: {result:?}");
            if let Err(v) = result {
                assert_eq!(v.reason, Reason::WeakPassword);
            }
        }
    }
}
