//! argon2id hashing and verification, kept off the async executor.
//!
//! A hash at OWASP's minimum costs tens of milliseconds of CPU and 19 MiB of memory. Run inline it
//! would stall every request sharing the worker thread; run unbounded on the blocking pool, a burst
//! of logins would allocate hundreds of MiB at once. So hashes run on dedicated worker threads, as
//! many as the machine has cores (`--hash-concurrency`), and each login first takes a slot — a
//! permit from a semaphore with [`SLOTS_PER_WORKER`] slots per worker. A request that finds no slot
//! free within `--hash-queue-timeout` is answered 503 `server_busy` rather than queued without
//! bound; requests with a token never take a slot, and never wait behind a hash.
//!
//! Why two slots per worker: a login holds its slot across its throttle bookkeeping (statements
//! and a commit) and its hash. With one slot per worker the worker sat idle through every
//! holder's bookkeeping, and a login storm reached only 0.77–0.82 of one core's argon2 rate (#14).
//! With two, one login prepares while the other hashes, and the worker seldom waits. The price is
//! bounded: the checks in progress per account stay at most twice the workers, and no more memory
//! is used, since a queued job holds no argon2 memory.
//!
//! Priority: the workers run at a lower scheduling priority (`--hash-nice`, default 10), so that
//! on a busy core the async executor, which serves every other request, is scheduled first; a
//! hash still gets about a tenth of a core that something else keeps busy, so logins slow down
//! under load rather than stop.
//!
//! Memory: each worker keeps its argon2 working memory (19 MiB) and reuses it for every hash, so
//! the process holds `workers × 19 MiB` however many hashes it has done. On tokio's blocking pool
//! every thread that ever hashed kept its own allocator arena with a freed 19 MiB in it, and the
//! resident size grew with the largest burst ever seen.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use std::time::Duration;
use tokenlab_core::password::Argon2Policy;

use tokenlab_core::Reason;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Logins admitted per hashing worker: one hashing, one doing the bookkeeping around its hash.
pub const SLOTS_PER_WORKER: usize = 2;

#[derive(Clone)]
pub struct PasswordHasher {
    policy: Argon2Policy,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    /// The workers' queue: never longer than the number of slots, since a job is sent only by
    /// the holder of a slot; a job waiting in it holds no argon2 memory.
    jobs: mpsc::Sender<Job>,
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
    /// `concurrency`: hashes at once, one per worker (`None`: one per core); `queue_timeout`: how
    /// long a request waits for a slot.
    pub fn new(
        policy: Argon2Policy,
        concurrency: Option<usize>,
        queue_timeout: Duration,
        nice: i32,
    ) -> Result<Self, ApiError> {
        let mut unknowable = [0u8; 32];
        getrandom::fill(&mut unknowable).map_err(|e| ApiError::internal(e.to_string()))?;
        let dummy_hash = hash_with(policy, &unknowable, &mut Vec::new())?.into();
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let workers = concurrency.unwrap_or(cores).max(1);
        let jobs = start_workers(workers, nice)?;
        Ok(Self {
            policy,
            permits: Arc::new(Semaphore::new(workers * SLOTS_PER_WORKER)),
            queue_timeout,
            jobs,
            dummy_hash,
        })
    }

    /// A place on the hashing pool, waited for at most `--hash-queue-timeout`. Held across a
    /// login's throttle bookkeeping and its check, so that the checks in progress for an account
    /// (its throttle's `pending`) never exceed the number of slots.
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
        self.on_worker(slot, move |memory| {
            hash_with(policy, password.expose_secret().as_bytes(), memory)
        })
        .await
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
        self.on_worker(slot, move |memory| {
            let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
            if !matches(&parsed, password.expose_secret().as_bytes(), memory)? || !known_user {
                return Ok(Verification::Mismatch);
            }
            Ok(Verification::Match { needs_rehash: weaker_than(&parsed, &policy) })
        })
        .await
    }

    /// Runs `work` on a hashing worker while `slot` is held (until it finishes, even if the
    /// request that started it went away).
    async fn on_worker<T: Send + 'static>(
        &self,
        slot: HashSlot,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let outcome = work(memory);
            drop(slot);
            let _ = done.send(outcome);
        });
        self.jobs.send(job).map_err(|_| ApiError::internal("the hashing workers are gone"))?;
        result.await.map_err(|_| ApiError::internal("a hashing worker failed"))?
    }
}

/// Makes the calling worker thread `nice` (Linux: niceness is per thread). Raising one's own
/// niceness needs no privilege; failing to is logged, not fatal.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        let thread = Some(rustix::thread::gettid());
        if let Err(err) = rustix::process::setpriority_process(thread, nice) {
            tracing::warn!("cannot lower the hashing worker's priority to nice {nice}: {err}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// One password hash or check, given the worker's reusable argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// `count` threads that take jobs from one queue, each with its own argon2 memory. They end when
/// every `PasswordHasher` holding the queue is dropped.
fn start_workers(count: usize, nice: i32) -> Result<mpsc::Sender<Job>, ApiError> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for index in 0..count {
        let queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name(format!("argon2-{index}"))
            .spawn(move || {
                lower_priority(nice);
                let mut memory = Vec::new();
                loop {
                    let next = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok(job) = next else { return };
                    // A panicking job loses its answer (the caller gets an internal error), not
                    // the worker.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut memory);
                    }));
                    if ran.is_err() {
                        tracing::error!("a password hashing job panicked");
                    }
                }
            })
            .map_err(ApiError::internal)?;
    }
    Ok(jobs)
}

/// A place on the hashing pool; dropping it frees the place.
#[derive(Debug)]
pub struct HashSlot {
    _permit: OwnedSemaphorePermit,
}

/// The argon2 computation itself, in `memory` (grown to the parameters' size, then reused).
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    output_len: usize,
    memory: &mut Vec<Block>,
) -> Result<Output, ApiError> {
    let blocks = argon2.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(ApiError::internal)
}

/// A PHC string carrying the algorithm, the parameters, a fresh 128-bit salt and the hash: what
/// `argon2`'s `hash_password` writes, computed in the worker's memory.
fn hash_with(
    policy: Argon2Policy,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<String, ApiError> {
    let argon2 = argon2_for(policy)?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(ApiError::internal)?;
    let output = compute(&argon2, password, salt_bytes, Params::DEFAULT_OUTPUT_LEN, memory)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(ApiError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored` under the stored algorithm, version, parameters and salt
/// (what `argon2`'s `verify_password` checks, in the worker's memory). `Output`'s comparison is
/// constant-time.
fn matches(
    stored: &PasswordHash<'_>,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<bool, ApiError> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else { return Ok(false) };
    let algorithm = Algorithm::try_from(stored.algorithm).map_err(ApiError::internal)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(ApiError::internal)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(ApiError::internal)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = compute(&argon2, password, salt_bytes, expected.len(), memory)?;
    Ok(computed == expected)
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
        let hasher = PasswordHasher::new(OWASP_MINIMUM, None, Duration::from_secs(5), 10).unwrap();
        let current = hasher.hash(SecretString::from("correct horse")).await.unwrap();
        let weak_policy = Argon2Policy { memory_kib: 8192, iterations: 1, parallelism: 1 };
        let weak = hash_with(weak_policy, b"correct horse", &mut Vec::new()).unwrap();
        // A hash the library itself wrote verifies too: the worker's computation is argon2's.
        let by_the_library = {
            use argon2::PasswordHasher as _;
            let salt = SaltString::generate(&mut OsRng);
            let argon2 = argon2_for(OWASP_MINIMUM).unwrap();
            argon2.hash_password(b"correct horse", &salt).unwrap().to_string()
        };
        let cases = [
            ("correct horse", Some(current.clone()), Verification::Match { needs_rehash: false }),
            ("correct horse ", Some(current.clone()), Verification::Mismatch),
            ("wrong", Some(current), Verification::Mismatch),
            ("correct horse", Some(weak), Verification::Match { needs_rehash: true }),
            (
                "correct horse",
                Some(by_the_library.clone()),
                Verification::Match { needs_rehash: false },
            ),
            ("wrong", Some(by_the_library), Verification::Mismatch),
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
        let hasher = PasswordHasher::new(OWASP_MINIMUM, Some(1), Duration::ZERO, 0).unwrap();
        let held: Vec<HashSlot> = {
            let mut held = Vec::new();
            for _ in 0..SLOTS_PER_WORKER {
                held.push(hasher.slot().await.unwrap());
            }
            held
        };
        let refused = hasher.slot().await.unwrap_err();
        assert_eq!(refused.reason(), Reason::ServerBusy);
        drop(held);
        assert!(hasher.slot().await.is_ok(), "a freed slot is taken at once");
    }
}
