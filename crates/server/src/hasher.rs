//! argon2id hashing and verification, kept off the async executor.
//!
//! A hash at OWASP's minimum costs tens of milliseconds of CPU and 19 MiB of memory. Run inline it
//! would stall every request sharing the worker thread; run unbounded on the blocking pool, a burst
//! of logins would allocate hundreds of MiB at once. So each hash takes a slot — a permit from a
//! semaphore sized to the machine's cores (`--hash-concurrency`) — then runs on the blocking pool.
//! A request that finds no slot free within `--hash-queue-timeout` is answered 503 `server_busy`
//! rather than queued without bound; requests with a token never take a slot.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret as _, SecretString};
use std::time::Duration;
use tokenlab_core::password::Argon2Policy;

use tokenlab_core::Reason;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

#[derive(Clone)]
pub struct PasswordHasher {
    policy: Argon2Policy,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    /// A hash of a random password nobody knows. Logins for unknown users verify against it, so
    /// "no such user" costs the same time as "wrong password" and names cannot be probed by timing.
    dummy_hash: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    Match {
        /// The stored hash is weaker than the current policy and should be replaced now that the
        /// password is known.
        needs_rehash: bool,
    },
}

impl PasswordHasher {
    /// `concurrency`: hashes at once (`None`: one per core); `queue_timeout`: how long a request
    /// waits for a slot.
    pub fn new(
        policy: Argon2Policy,
        concurrency: Option<usize>,
        queue_timeout: Duration,
    ) -> Result<Self, ApiError> {
        let mut unknowable = [0u8; 32];
        getrandom::fill(&mut unknowable).map_err(|e| ApiError::internal(e.to_string()))?;
        let dummy_hash = hash_now(policy, &unknowable)?.into();
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let slots = concurrency.unwrap_or(cores).max(1);
        Ok(Self { policy, permits: Arc::new(Semaphore::new(slots)), queue_timeout, dummy_hash })
    }

    /// A place on the hashing pool, waited for at most `--hash-queue-timeout`. Held across a
    /// login's throttle bookkeeping and its check, so that the checks in progress for an account
    /// (its throttle's `pending`) never exceed the pool's size.
    pub async fn slot(&self) -> Result<HashSlot, ApiError> {
        let waiting = Arc::clone(&self.permits).acquire_owned();
        match tokio::time::timeout(self.queue_timeout, waiting).await {
            Ok(permit) => Ok(HashSlot { _permit: permit.map_err(ApiError::internal)? }),
            Err(_) => {
                let seconds = self.queue_timeout.as_secs().max(1);
                Err(ApiError::refused(
                    Reason::ServerBusy,
                    "every password check slot is busy; retry shortly",
                )
                .with_retry_after(i64::try_from(seconds).unwrap_or(i64::MAX)))
            }
        }
    }

    /// Returns a PHC string carrying the algorithm, the parameters and a fresh 128-bit salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let slot = self.slot().await?;
        self.hash_in(slot, password).await
    }

    /// [`PasswordHasher::hash`] on a slot the caller already holds.
    pub async fn hash_in(
        &self,
        slot: HashSlot,
        password: SecretString,
    ) -> Result<String, ApiError> {
        let policy = self.policy;
        off_executor(slot, move || hash_now(policy, password.expose_secret().as_bytes())).await
    }

    /// Verifies against `stored`, or against the dummy hash when there is no user (`None`); the
    /// latter never matches. Runs on the slot, which it gives back when done.
    pub async fn verify_in(
        &self,
        slot: HashSlot,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verification, ApiError> {
        let policy = self.policy;
        let known_user = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        off_executor(slot, move || {
            let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
            if Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_err()
                || !known_user
            {
                return Ok(Verification::Mismatch);
            }
            Ok(Verification::Match { needs_rehash: weaker_than(&parsed, &policy) })
        })
        .await
    }
}

/// A place on the hashing pool; dropping it frees the place.
#[derive(Debug)]
pub struct HashSlot {
    _permit: OwnedSemaphorePermit,
}

/// Runs `work` on the blocking pool while `slot` is held (until it finishes, even if the request
/// that started it went away).
async fn off_executor<T: Send + 'static>(
    slot: HashSlot,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(ApiError::internal)?
}

fn hash_now(policy: Argon2Policy, password: &[u8]) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2_for(policy)?
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(ApiError::internal)
}

fn weaker_than(stored: &PasswordHash<'_>, policy: &Argon2Policy) -> bool {
    if stored.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    match Params::try_from(stored) {
        Ok(params) => policy.needs_rehash(&Argon2Policy {
            memory_kib: params.m_cost(),
            iterations: params.t_cost(),
            parallelism: params.p_cost(),
        }),
        Err(_) => true,
    }
}

fn argon2_for(policy: Argon2Policy) -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(policy.memory_kib, policy.iterations, policy.parallelism, None)
        .map_err(ApiError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenlab_core::password::OWASP_MINIMUM;

    #[tokio::test]
    async fn verification_outcomes() {
        let hasher = PasswordHasher::new(OWASP_MINIMUM, None, Duration::from_secs(5)).unwrap();
        let current = hasher.hash(SecretString::from("correct horse")).await.unwrap();
        let weak_policy = Argon2Policy { memory_kib: 8192, iterations: 1, parallelism: 1 };
        let weak = hash_now(weak_policy, b"correct horse").unwrap();
        let cases = [
            ("correct horse", Some(current.clone()), Verification::Match { needs_rehash: false }),
            ("correct horse ", Some(current.clone()), Verification::Mismatch),
            ("wrong", Some(current), Verification::Mismatch),
            ("correct horse", Some(weak), Verification::Match { needs_rehash: true }),
            ("correct horse", None, Verification::Mismatch),
        ];
        for (password, stored, expected) in cases {
            let slot = hasher.slot().await.unwrap();
            let got =
                hasher.verify_in(slot, SecretString::from(password), stored.clone()).await.unwrap();
            assert_eq!(got, expected, "{password:?} against {stored:?}");
        }
    }

    #[tokio::test]
    async fn a_full_pool_answers_server_busy_after_the_deadline() {
        let hasher = PasswordHasher::new(OWASP_MINIMUM, Some(1), Duration::ZERO).unwrap();
        let held = hasher.slot().await.unwrap();
        let refused = hasher.slot().await.unwrap_err();
        assert_eq!(refused.reason(), Reason::ServerBusy);
        drop(held);
        assert!(hasher.slot().await.is_ok(), "a freed slot is taken at once");
    }
}
