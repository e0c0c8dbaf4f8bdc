//! argon2id hashing and verification, kept off the async executor.
//!
//! A hash at OWASP's minimum costs 7-20 milliseconds of CPU and 19 MiB of memory. Run inline it
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
//! resident size grew with the largest burst ever seen. The working memory is wiped as each hash
//! returns, so it keeps nothing derived from a password between logins.
//!
//! What a check costs is read from the stored hash, and so from a database row. A row asking for
//! more than four times the policy's memory or passes (`Argon2Policy::affords`) is refused before
//! the kernel allocates anything: RFC 9106 allows 4 TiB and 2³² − 1 passes, and one such row
//! would otherwise hold a worker's memory or its time for good. A row asking for more memory than
//! the policy, within that, is checked (its check briefly takes up to four times the policy's
//! memory), and the worker then lets that memory go, so between checks the pool holds
//! `workers × 19 MiB` whatever rows it has read. Once its password has been checked, such a row is
//! rehashed to the policy, as a weaker one is (`Argon2Policy::needs_rehash`).
//!
//! Two crates, split by job (ADR 35). `argon2` (RustCrypto) reads and writes the PHC strings in the
//! database, validates their parameters and compares tags in constant time: everything that
//! touches a stored hash. `argon2-rust` only computes the tag, with a hand-vectorised kernel
//! (AVX-512, AVX2, SSE2 or NEON, else portable code, chosen at run time) that took half the CPU
//! of `argon2`'s on the machines of #14; a login's CPU is mostly its hash. Both implement RFC 9106,
//! and `the_kernel_computes_what_rustcrypto_computes` holds them to the same tags.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use std::time::Duration;
use tokenlab_core::password::{AFFORDABLE_FACTOR, Argon2Policy};

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
        /// The stored hash was made otherwise than the current policy says (another variant or
        /// version, weaker or costlier memory, passes or lanes) and should be replaced now that
        /// the password is known (`Argon2Policy::needs_rehash`).
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
        let dummy_hash = hash_with(policy, &unknowable, &mut None)?.into();
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
        self.on_worker(slot, move |kernel| {
            hash_with(policy, password.expose_secret().as_bytes(), kernel)
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
        self.on_worker(slot, move |kernel| {
            let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
            if !matches(&parsed, password.expose_secret().as_bytes(), &policy, kernel)?
                || !known_user
            {
                return Ok(Verification::Mismatch);
            }
            Ok(Verification::Match { needs_rehash: made_otherwise(&parsed, &policy) })
        })
        .await
    }

    /// Runs `work` on a hashing worker while `slot` is held (until it finishes, even if the
    /// request that started it went away).
    async fn on_worker<T: Send + 'static>(
        &self,
        slot: HashSlot,
        work: impl FnOnce(&mut Kernel) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |kernel| {
            let outcome = work(kernel);
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

/// One password hash or check, given the worker's kernel.
type Job = Box<dyn FnOnce(&mut Kernel) + Send>;

/// A worker's argon2 computation, with the memory it keeps between hashes: made by the first hash,
/// pointed at each hash's parameters (the memory grows only for larger ones), and dropped after a
/// check that needed more memory than the policy (`matches`).
type Kernel = Option<argon2_rust::Hasher>;

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
                let mut kernel: Kernel = None;
                loop {
                    let next = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok(job) = next else { return };
                    // A panicking job loses its answer (the caller gets an internal error), not
                    // the worker.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut kernel);
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

/// The argon2 computation itself, on the worker's kernel, for parameters `argon2` has validated.
fn compute(
    computation: Computation<'_>,
    password: &[u8],
    salt: &[u8],
    kernel: &mut Kernel,
) -> Result<Output, ApiError> {
    let Computation { algorithm, version, params, output_len } = computation;
    let kernel_params = argon2_rust::Params::builder()
        .memory(argon2_rust::params::Memory::kib(u64::from(params.m_cost())))
        .passes(params.t_cost())
        .lanes(params.p_cost())
        // The pool counts a hash as one thread's work.
        .threads(1)
        .tag_len(argon2_rust::params::TagLen::bytes(
            u64::try_from(output_len).map_err(ApiError::internal)?,
        ))
        .build()
        .map_err(kernel_fault)?;
    let algorithm = match algorithm {
        Algorithm::Argon2d => argon2_rust::Algorithm::Argon2d,
        Algorithm::Argon2i => argon2_rust::Algorithm::Argon2i,
        Algorithm::Argon2id => argon2_rust::Algorithm::Argon2id,
    };
    let version = match version {
        Version::V0x10 => argon2_rust::Version::V0x10,
        Version::V0x13 => argon2_rust::Version::V0x13,
    };
    let configured = argon2_rust::Argon2::new(algorithm, version, kernel_params);
    let hasher = match kernel {
        Some(hasher) => {
            hasher.set_argon2(configured);
            hasher
        }
        None => kernel.insert(configured.hasher()),
    };
    let mut tag = [0u8; Output::MAX_LENGTH];
    let tag = tag.get_mut(..output_len).ok_or_else(|| ApiError::internal("argon2 tag too long"))?;
    // No secret (no pepper); the associated data a PHC string may carry (`data=`) goes into the
    // tag, as `argon2` puts it.
    hasher.hash_into_with_ad(password, salt, &[], params.data(), tag).map_err(kernel_fault)?;
    Output::new(tag).map_err(ApiError::internal)
}

/// What to compute: `argon2`'s names for it, so that its validation stands in front of the kernel.
struct Computation<'a> {
    algorithm: Algorithm,
    version: Version,
    params: &'a Params,
    output_len: usize,
}

fn kernel_fault(err: argon2_rust::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(err).context("computing an argon2 tag"))
}

/// A PHC string carrying the algorithm, the parameters, a fresh 128-bit salt and the hash: what
/// `argon2`'s `hash_password` writes, computed on the worker's kernel.
fn hash_with(
    policy: Argon2Policy,
    password: &[u8],
    kernel: &mut Kernel,
) -> Result<String, ApiError> {
    let params = params_for(policy)?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(ApiError::internal)?;
    let computation = Computation {
        algorithm: Algorithm::Argon2id,
        version: Version::V0x13,
        params: &params,
        output_len: Params::DEFAULT_OUTPUT_LEN,
    };
    let output = compute(computation, password, salt_bytes, kernel)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(ApiError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored` under the stored algorithm, version, parameters and salt
/// (what `argon2`'s `verify_password` checks, on the worker's kernel). `Output`'s comparison is
/// constant-time.
///
/// A stored hash that asks for more than `policy` affords (`Argon2Policy::affords`) is an error,
/// refused before the kernel allocates anything. One that asks for more memory than the policy,
/// but within it, is checked, and the worker then gives that memory back: between checks it keeps
/// only what the policy's own hashes need, whatever rows it has read.
fn matches(
    stored: &PasswordHash<'_>,
    password: &[u8],
    policy: &Argon2Policy,
    kernel: &mut Kernel,
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
    let asked = cost_of(&params);
    if !policy.affords(&asked) {
        return Err(ApiError::internal(format!(
            "a stored password hash asks for {} KiB and {} passes, more than \
             {AFFORDABLE_FACTOR} times the policy's {} KiB and {} passes: not checked",
            asked.memory_kib, asked.iterations, policy.memory_kib, policy.iterations
        )));
    }
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(ApiError::internal)?;
    let computation =
        Computation { algorithm, version, params: &params, output_len: expected.len() };
    let computed = compute(computation, password, salt_bytes, kernel);
    if asked.memory_kib > policy.memory_kib {
        // Dropped, not kept for the next hash: the kernel never shrinks its memory by itself.
        *kernel = None;
    }
    Ok(computed? == expected)
}

/// What a hash with `params` costs, in the policy's terms.
fn cost_of(params: &Params) -> Argon2Policy {
    Argon2Policy {
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    }
}

/// Whether `stored` was made otherwise than this server makes a hash: another variant than
/// argon2id, another version than 0x13, other memory, passes or lanes than the policy's. (Its tag
/// and salt lengths are not compared: this server writes 32 and 16 bytes, and nothing else has
/// written rows here.)
fn made_otherwise(stored: &PasswordHash<'_>, policy: &Argon2Policy) -> bool {
    if stored.algorithm != argon2::ARGON2ID_IDENT || stored.version != Some(Version::V0x13.into()) {
        return true;
    }
    match Params::try_from(stored) {
        Ok(params) => policy.needs_rehash(&cost_of(&params)),
        Err(_) => true,
    }
}

fn params_for(policy: Argon2Policy) -> Result<Params, ApiError> {
    Params::new(policy.memory_kib, policy.iterations, policy.parallelism, None)
        .map_err(ApiError::internal)
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
        let weak = hash_with(weak_policy, b"correct horse", &mut None).unwrap();
        // A hash `argon2` itself wrote verifies too: every password stored before the kernel
        // changed (ADR 35) still logs in.
        let by_the_library = {
            use argon2::PasswordHasher as _;
            let salt = SaltString::generate(&mut OsRng);
            let params = params_for(OWASP_MINIMUM).unwrap();
            let argon2 = argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            argon2.hash_password(b"correct horse", &salt).unwrap().to_string()
        };
        // Costlier than the policy, within what it affords: replaced too, so that no row costs
        // the pool more than the policy at every login.
        let costlier = stored_at(
            Argon2Policy {
                memory_kib: 2 * OWASP_MINIMUM.memory_kib,
                iterations: 3,
                parallelism: 1,
            },
            b"correct horse",
        );
        let old_version = {
            use argon2::PasswordHasher as _;
            let salt = SaltString::generate(&mut OsRng);
            let params = params_for(OWASP_MINIMUM).unwrap();
            let argon2 = argon2::Argon2::new(Algorithm::Argon2id, Version::V0x10, params);
            argon2.hash_password(b"correct horse", &salt).unwrap().to_string()
        };
        let cases = [
            ("correct horse", Some(current.clone()), Verification::Match { needs_rehash: false }),
            ("correct horse ", Some(current.clone()), Verification::Mismatch),
            ("wrong", Some(current), Verification::Mismatch),
            ("correct horse", Some(weak), Verification::Match { needs_rehash: true }),
            ("correct horse", Some(costlier), Verification::Match { needs_rehash: true }),
            ("correct horse", Some(old_version), Verification::Match { needs_rehash: true }),
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

    /// A PHC string `argon2` itself writes for `password` at `policy`.
    fn stored_at(policy: Argon2Policy, password: &[u8]) -> String {
        use argon2::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let argon2 =
            argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, params_for(policy).unwrap());
        argon2.hash_password(password, &salt).unwrap().to_string()
    }

    /// A database row decides what a check costs; rows the policy cannot afford are refused
    /// unchecked, and a check that needed more memory than the policy gives it back. Small numbers
    /// keep the test fast; the rule is the same at 19 MiB.
    #[test]
    fn a_stored_hash_costs_at_most_what_the_policy_affords_and_the_worker_keeps_the_policys_memory()
    {
        let policy = Argon2Policy { memory_kib: 64, iterations: 1, parallelism: 1 };
        let bigger = Argon2Policy { memory_kib: 128, iterations: 2, ..policy };
        // Fake salts and tags: these are refused before anything is computed. Were they not, the
        // test would hang on the 2³² − 1 passes, and get the kernel's own error for 4 TiB (or the
        // machine's, where memory is overcommitted) instead of this refusal.
        let hostile = |params: &str| {
            format!(
                "$argon2id$v=19${params}$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
            )
        };
        let cases = [
            ("at the policy", stored_at(policy, b"pw"), Some(true), true),
            ("the wrong password", stored_at(policy, b"other"), Some(false), true),
            ("twice the memory", stored_at(bigger, b"pw"), Some(true), false),
            ("at the policy again", stored_at(policy, b"pw"), Some(true), true),
            ("just past four times the memory", hostile("m=257,t=1,p=1"), None, true),
            ("4 TiB", hostile("m=4294967295,t=1,p=1"), None, true),
            ("2³² − 1 passes", hostile("m=64,t=4294967295,p=1"), None, true),
        ];
        let mut kernel: Kernel = None;
        for (what, stored, expected, memory_kept) in cases {
            let parsed = PasswordHash::new(&stored).unwrap();
            let checked = matches(&parsed, b"pw", &policy, &mut kernel);
            match expected {
                Some(expected) => assert_eq!(checked.ok(), Some(expected), "{what}"),
                None => {
                    let error = format!("{:?}", checked.expect_err(what));
                    assert!(error.contains("not checked"), "{what}: {error}");
                }
            }
            // Blocks are KiB: the worker holds the policy's memory for the next hash, or none.
            let held = kernel.as_ref().map_or(0, argon2_rust::Hasher::reserved_blocks);
            assert_eq!(held > 0, memory_kept, "{what}: the worker holds {held} KiB");
            assert!(held <= policy.memory_kib as usize, "{what}: the worker holds {held} KiB");
        }
    }

    struct Case<'a> {
        algorithm: Algorithm,
        version: Version,
        m_cost: u32,
        t_cost: u32,
        p_cost: u32,
        tag_len: usize,
        password: &'a [u8],
        salt: &'a [u8],
        /// Associated data (`data=` in a PHC string).
        data: &'a [u8],
    }

    /// A case with a 32-byte tag, an ASCII password, a 16-byte salt and no associated data.
    fn case(
        algorithm: Algorithm,
        version: Version,
        m_cost: u32,
        t_cost: u32,
        p_cost: u32,
    ) -> Case<'static> {
        Case {
            algorithm,
            version,
            m_cost,
            t_cost,
            p_cost,
            tag_len: 32,
            password: b"correct horse",
            salt: b"saltsaltsaltsalt",
            data: b"",
        }
    }

    /// The kernel against `argon2`'s own computation, on one kernel throughout, as a worker uses
    /// it: its memory grows (small cases first, then the production parameters) and is reused for
    /// smaller ones, and a tag that differed in any case would lock out the users whose hashes
    /// `argon2` wrote (or the reverse).
    #[test]
    fn the_kernel_computes_what_rustcrypto_computes() {
        use Algorithm::{Argon2d, Argon2i, Argon2id};
        use Version::{V0x10, V0x13};
        let long_password = "correct horse battery staple ".repeat(40);
        let cases = [
            Case { password: b"", salt: b"saltsalt", ..case(Argon2id, V0x13, 8, 1, 1) },
            case(Argon2id, V0x13, 19_456, 2, 1),
            Case { password: "pässwörd ✓".as_bytes(), ..case(Argon2id, V0x13, 64, 3, 1) },
            Case {
                password: long_password.as_bytes(),
                salt: &[0xff; 32],
                ..case(Argon2id, V0x13, 8_192, 1, 1)
            },
            // Memory that is not a multiple of 4 × lanes is rounded down alike.
            case(Argon2id, V0x13, 1_027, 2, 2),
            case(Argon2id, V0x13, 4_096, 1, 4),
            Case { tag_len: 10, ..case(Argon2id, V0x13, 256, 2, 1) },
            Case { tag_len: 64, ..case(Argon2id, V0x13, 256, 2, 1) },
            Case { data: b"data", ..case(Argon2id, V0x13, 256, 2, 1) },
            case(Argon2i, V0x13, 512, 3, 1),
            case(Argon2d, V0x13, 512, 3, 2),
            case(Argon2id, V0x10, 512, 2, 1),
            case(Argon2i, V0x10, 512, 2, 1),
            // The production parameters again, after smaller ones have shrunk nothing.
            Case { password: b"another horse", ..case(Argon2id, V0x13, 19_456, 2, 1) },
        ];
        let mut kernel: Kernel = None;
        for Case { algorithm, version, m_cost, t_cost, p_cost, tag_len, password, salt, data } in
            cases
        {
            let mut builder = argon2::ParamsBuilder::new();
            builder.m_cost(m_cost).t_cost(t_cost).p_cost(p_cost).output_len(tag_len);
            if !data.is_empty() {
                builder.data(argon2::AssociatedData::new(data).unwrap());
            }
            let params = builder.build().unwrap();
            let mut expected = vec![0u8; tag_len];
            argon2::Argon2::new(algorithm, version, params.clone())
                .hash_password_into(password, salt, &mut expected)
                .unwrap();
            let computation =
                Computation { algorithm, version, params: &params, output_len: tag_len };
            let computed = compute(computation, password, salt, &mut kernel).unwrap();
            assert_eq!(
                computed.as_bytes(),
                expected,
                "{algorithm:?} {version:?} m={m_cost} t={t_cost} p={p_cost} tag={tag_len} \
                 data={data:?}"
            );
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
