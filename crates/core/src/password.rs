//! The password-hashing policy.
//!
//! The numbers are OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB of memory,
//! two passes, one lane. They live here, not next to the hashing code, so that a stored hash can be
//! compared with the policy and replaced at the next login when it was made with other parameters.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Policy {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

pub const OWASP_MINIMUM: Argon2Policy =
    Argon2Policy { memory_kib: 19_456, iterations: 2, parallelism: 1 };

impl Argon2Policy {
    /// True when a hash made with `stored` differs from this policy in any parameter and should be
    /// replaced the next time the password is known: a weaker one, so that it resists guessing as
    /// the policy says, and a costlier one too, so that its logins cost what the policy says once
    /// its user has logged in. Until then each check of a costlier row takes a hashing worker for
    /// up to sixteen policy hashes and up to four times a policy hash's memory
    /// ([`Self::affords`]), in the pool every login shares. So an operator who lowers the policy
    /// lowers every stored hash with it, one login at a time. Rehashing both ways is what
    /// libsodium's `crypto_pwhash_str_needs_rehash`, PHP's `password_needs_rehash` and Django's
    /// `must_update` do.
    pub fn needs_rehash(&self, stored: &Argon2Policy) -> bool {
        stored != self
    }

    /// True when a stored hash asks for no more memory and no more passes than
    /// [`AFFORDABLE_FACTOR`] times this policy's, so that a worker sized for this policy may check
    /// it. The parameters come from the database row, and RFC 9106 allows 4 TiB and 2³² − 1
    /// passes: one row written by something other than this server could otherwise take a worker's
    /// memory or its time for good. (Lanes are not bounded here: one worker computes them one after
    /// another, and the memory, which bounds them, already is.)
    pub fn affords(&self, stored: &Argon2Policy) -> bool {
        stored.memory_kib <= self.memory_kib.saturating_mul(AFFORDABLE_FACTOR)
            && stored.iterations <= self.iterations.saturating_mul(AFFORDABLE_FACTOR)
    }
}

/// How far past the policy a stored hash may go and still be checked (see
/// [`Argon2Policy::affords`]): room for a policy that was lowered after hashes were stored.
pub const AFFORDABLE_FACTOR: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rehash_when_any_parameter_differs_from_the_policy() {
        let p = OWASP_MINIMUM;
        let cases = [
            (p, false),
            (Argon2Policy { memory_kib: 4096, ..p }, true),
            (Argon2Policy { iterations: 1, ..p }, true),
            (Argon2Policy { memory_kib: 65_536, iterations: 3, ..p }, true),
            (Argon2Policy { memory_kib: 65_536, iterations: 1, ..p }, true),
            (Argon2Policy { parallelism: 4, ..p }, true),
        ];
        for (stored, expected) in cases {
            assert_eq!(p.needs_rehash(&stored), expected, "{stored:?}");
        }
    }

    #[test]
    fn a_stored_hash_is_checked_only_within_four_times_the_policy() {
        let p = OWASP_MINIMUM;
        let cases = [
            (p, true),
            (Argon2Policy { memory_kib: 4096, iterations: 1, ..p }, true),
            (Argon2Policy { memory_kib: 4 * 19_456, iterations: 8, ..p }, true),
            (Argon2Policy { memory_kib: 4 * 19_456 + 1, ..p }, false),
            (Argon2Policy { iterations: 9, ..p }, false),
            (Argon2Policy { memory_kib: u32::MAX, ..p }, false),
            (Argon2Policy { iterations: u32::MAX, ..p }, false),
            (Argon2Policy { parallelism: 64, ..p }, true),
        ];
        for (stored, expected) in cases {
            assert_eq!(p.affords(&stored), expected, "{stored:?}");
        }
        let generous = Argon2Policy { memory_kib: u32::MAX / 2, iterations: u32::MAX, ..p };
        assert!(
            generous.affords(&Argon2Policy { memory_kib: u32::MAX, ..generous }),
            "no overflow"
        );
    }
}
