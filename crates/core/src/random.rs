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
