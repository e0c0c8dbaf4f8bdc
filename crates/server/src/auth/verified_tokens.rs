//! Access tokens this instance has already verified, so a token seen before costs a SHA-256 and a
//! map lookup instead of an Ed25519 verification.
//!
//! What is cached is only the result of the checks that cannot change for the same bytes: the
//! signature, the header, issuer, audience and the claims' shape. Everything that depends on *when*
//! the token is used is checked again on every use: the time claims on the injected clock (so a
//! cached token is refused the moment it expires), the key being still in force (a retired key's
//! tokens stop at once, cached or not), and the login not being ended (`RevokedFamilies`, after
//! this). The cache is bounded by count and keyed by the token's hash, never by the token.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokenlab_core::wire::AccessClaims;

use crate::keys::KeyStore;

/// Enough for every live token of a busy instance; beyond it the least recently used go first.
pub const CAPACITY: usize = 10_000;

pub struct VerifiedTokens {
    cache: quick_cache::sync::Cache<[u8; 32], Arc<Verified>>,
}

struct Verified {
    kid: String,
    claims: AccessClaims,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self { cache: quick_cache::sync::Cache::new(CAPACITY) }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before with a key that is still in force.
    pub fn get(&self, token: &str, keys: &KeyStore) -> Option<AccessClaims> {
        let key = digest(token);
        let verified = self.cache.get(&key)?;
        if !keys.in_force(&verified.kid) {
            self.cache.remove(&key);
            return None;
        }
        Some(verified.claims.clone())
    }

    pub fn insert(&self, token: &str, kid: String, claims: AccessClaims) {
        self.cache.insert(digest(token), Arc::new(Verified { kid, claims }));
    }

    /// Drops a token that can never pass again (it expired), so the cache holds no dead tokens.
    pub fn forget(&self, token: &str) {
        self.cache.remove(&digest(token));
    }
}
