//! The operating system's CSPRNG as tokenlab's [`SecretSource`], and how secrets are stored.

use sha2::{Digest as _, Sha256};
use tokenlab_core::random::{SECRET_BYTES, SecretSource, SecretSourceError, encode_token};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, Default)]
pub struct OsSecrets;

impl SecretSource for OsSecrets {
    fn fill(&self, dest: &mut [u8]) -> Result<(), SecretSourceError> {
        getrandom::fill(dest).map_err(|e| SecretSourceError(e.to_string()))
    }
}

/// A fresh 256-bit secret, URL-safe: 64 lowercase hex characters.
pub fn new_token(secrets: &dyn SecretSource) -> Result<String, ApiError> {
    let mut bytes = [0u8; SECRET_BYTES];
    secrets.fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(encode_token(&bytes))
}

/// A fresh 128-bit identifier that names something without being a credential for it (the
/// sessions list's ids): 32 lowercase hex characters.
pub fn new_handle(secrets: &dyn SecretSource) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    secrets.fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Secrets are stored as their SHA-256, hex-encoded. A secret of 128 bits or more cannot be
/// recovered from its hash, so no salt or slow hash is needed (unlike passwords), and lookups by
/// hash stay a plain indexed equality.
pub fn storage_hash(secret: &str) -> String {
    // Not `format!("{:x}")`: the formatting machinery cost a quarter of the hash itself, and a
    // device call hashes twice (its session id and its token).
    base16ct::lower::encode_string(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        let cases = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ];
        for (secret, expected) in cases {
            assert_eq!(storage_hash(secret), expected);
        }
    }

    #[test]
    fn os_secrets_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsSecrets.fill(&mut a).unwrap();
        OsSecrets.fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
