//! The password-hashing policy.
//!
//! The numbers are OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB of memory,
//! two passes, one lane. They live here, not next to the hashing code, so that a stored hash can be
//! compared with the policy and upgraded at the next login when the policy rises.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Policy {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

pub const OWASP_MINIMUM: Argon2Policy =
    Argon2Policy { memory_kib: 19_456, iterations: 2, parallelism: 1 };

impl Argon2Policy {
    /// True when a hash made with `stored` is weaker than this policy in any dimension and should
    /// be replaced the next time the password is known.
    pub fn needs_rehash(&self, stored: &Argon2Policy) -> bool {
        stored.memory_kib < self.memory_kib
            || stored.iterations < self.iterations
            || stored.parallelism < self.parallelism
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rehash_when_any_parameter_is_below_policy() {
        let p = OWASP_MINIMUM;
        let cases = [
            (p, false),
            (Argon2Policy { memory_kib: 4096, ..p }, true),
            (Argon2Policy { iterations: 1, ..p }, true),
            (Argon2Policy { memory_kib: 65_536, iterations: 3, ..p }, false),
        ];
        for (stored, expected) in cases {
            assert_eq!(p.needs_rehash(&stored), expected, "{stored:?}");
        }
    }
}
