//! Counting login failures in fixed windows, so guessing passwords gets slow.
//!
//! The counter itself lives in the database (several server instances must share it); this module
//! decides, from a counter row, whether another attempt may be made and when to come back.
//!
//! Logins are counted in three buckets, checked in this order so that no single client can turn
//! the limits against anyone else:
//! - per client address (`client`): one address guessing across many accounts;
//! - per account *and* client (`pair`): one address guessing one account — a client over this
//!   limit is refused without touching the account's own count;
//! - per account, all clients together (`account`): a higher ceiling that stops a guesser spread
//!   over many addresses.
//!
//! Only failures count, and only once they have failed: a correct password is never refused
//! because other correct logins are in flight. A check in progress holds a reservation in its
//! buckets (`pending`), so concurrent guesses cannot all slip under a limit either.

use time::Duration;

use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// Failed attempts allowed within one window; the attempt after them is refused.
    pub max_failures: u32,
    pub window: Duration,
}

impl FailureLimit {
    /// OWASP ASVS V2.2.1 asks for anti-automation; ten tries per quarter hour per account stops
    /// online guessing while a user who mistypes a few times never notices.
    pub const PER_ACCOUNT: FailureLimit =
        FailureLimit { max_failures: 10, window: Duration::minutes(15) };
    /// One address trying many accounts (credential stuffing) meets this bound instead.
    pub const PER_CLIENT: FailureLimit =
        FailureLimit { max_failures: 100, window: Duration::minutes(15) };

    /// Whether the window that began at `window_started_at` is over at `now`, so counting restarts.
    pub fn window_over(&self, window_started_at: Timestamp, now: Timestamp) -> bool {
        now >= window_started_at + self.window
    }

    /// Decides on an attempt, given the attempts counted in the current window *including this one*
    /// (the counter is incremented before the password is checked, so concurrent guesses cannot
    /// all slip under the limit). A successful login takes its attempt back.
    /// `Err(retry_after)` when the attempt is over the limit.
    pub fn admit(
        &self,
        attempts: u32,
        window_started_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), Duration> {
        if self.window_over(window_started_at, now) || attempts <= self.max_failures {
            return Ok(());
        }
        Err(window_started_at + self.window - now)
    }
}

/// Whether a login may be checked, given the failures counted in the current window and the checks
/// in progress (`pending`) — the attempt after `max_failures` failures is refused.
/// `Err(retry_after)` when the bucket is full. The server reserves its place with the same
/// condition in one SQL statement; this is the rule it mirrors.
pub fn admit_check(
    limit: &FailureLimit,
    failures: u32,
    pending: u32,
    window_started_at: Timestamp,
    now: Timestamp,
) -> Result<(), Duration> {
    if limit.window_over(window_started_at, now)
        || failures.saturating_add(pending) < limit.max_failures
    {
        return Ok(());
    }
    Err(window_started_at + limit.window - now)
}

/// `Retry-After` is whole seconds; round up so a client that waits exactly that long succeeds.
pub fn retry_after_seconds(wait: Duration) -> i64 {
    let whole = wait.whole_seconds();
    if wait > Duration::seconds(whole) { whole + 1 } else { whole.max(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn decisions() {
        let limit = FailureLimit::PER_ACCOUNT;
        let cases = [
            (1, Duration::ZERO, Ok(())),
            (10, Duration::minutes(1), Ok(())),
            (11, Duration::minutes(1), Err(Duration::minutes(14))),
            (50, Duration::minutes(14), Err(Duration::minutes(1))),
            (11, Duration::minutes(15), Ok(())),
            (11, Duration::days(1), Ok(())),
        ];
        for (failures, elapsed, expected) in cases {
            assert_eq!(
                limit.admit(failures, T0, T0 + elapsed),
                expected,
                "{failures} after {elapsed}"
            );
        }
    }

    #[test]
    fn checks_are_admitted_below_the_limit_counting_those_in_progress() {
        let limit = FailureLimit::PER_ACCOUNT;
        let cases = [
            (0, 0, Duration::ZERO, Ok(())),
            (9, 0, Duration::minutes(1), Ok(())),
            (10, 0, Duration::minutes(1), Err(Duration::minutes(14))),
            (8, 2, Duration::minutes(5), Err(Duration::minutes(10))),
            (8, 1, Duration::minutes(5), Ok(())),
            (10, 3, Duration::minutes(15), Ok(())),
        ];
        for (failures, pending, elapsed, expected) in cases {
            assert_eq!(
                admit_check(&limit, failures, pending, T0, T0 + elapsed),
                expected,
                "{failures} failed + {pending} in progress after {elapsed}"
            );
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let cases = [
            (Duration::seconds(60), 60),
            (Duration::milliseconds(59_001), 60),
            (Duration::milliseconds(10), 1),
            (Duration::ZERO, 1),
        ];
        for (wait, expected) in cases {
            assert_eq!(retry_after_seconds(wait), expected, "{wait}");
        }
    }
}
