//! argon2id hashing, kept off the async executor.
//!
//! A hash at OWASP's minimum costs tens of milliseconds of CPU and 19 MiB of memory. Run inline it
//! would stall every request sharing the worker thread; run unbounded on the blocking pool, a burst
//! of logins would allocate hundreds of MiB at once. So each hash takes a permit from a semaphore
//! sized to the machine's cores, then runs on the blocking pool.

use std::sync::Arc;

use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
use tokenlab_core::password::Argon2Policy;
use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Clone)]
pub struct PasswordHasher {
    policy: Argon2Policy,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(policy: Argon2Policy) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self { policy, permits: Arc::new(Semaphore::new(cores)) }
    }

    /// Returns a PHC string carrying the algorithm, the parameters and a fresh 128-bit salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let policy = self.policy;
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            argon2_for(policy)?
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(ApiError::internal)
        })
        .await
        .map_err(ApiError::internal)?
    }
}

fn argon2_for(policy: Argon2Policy) -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(policy.memory_kib, policy.iterations, policy.parallelism, None)
        .map_err(ApiError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}
