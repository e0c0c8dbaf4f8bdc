//! Expiry of a server session used as a token (the article's second scheme).
//!
//! Two clocks run on every session: an *idle* timeout that activity pushes forward, and an
//! *absolute* timeout fixed at login that nothing extends. The idle timeout limits how long a
//! forgotten session stays usable; the absolute one limits how long a stolen session id is worth
//! anything, however busy the thief keeps it (OWASP Session Management Cheat Sheet).

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

impl SessionPolicy {
    pub const DEFAULT: SessionPolicy = SessionPolicy {
        idle_timeout: Duration::minutes(30),
        absolute_timeout: Duration::hours(12),
    };

    /// How far activity must move the idle expiry before the session is written back. The sliding
    /// expiry is then exact to within this step, and an active session costs one write per step
    /// instead of one per request: a minute for timeouts of half an hour or more, a thirtieth of
    /// the idle timeout for shorter ones (so a short timeout is never cut by more than ~3 %).
    pub fn write_back_step(&self) -> Duration {
        let step: Duration = self.idle_timeout / 30_i32;
        step.min(Duration::minutes(1))
    }

    /// The times of a session that starts now.
    pub fn start(&self, now: Timestamp) -> SessionTimes {
        let absolute_expires_at = now + self.absolute_timeout;
        SessionTimes {
            started_at: now,
            idle_expires_at: (now + self.idle_timeout).min(absolute_expires_at),
            absolute_expires_at,
        }
    }
}

/// When a session started and when it stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTimes {
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub absolute_expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No request for longer than the idle timeout.
    Idle,
    /// Older than the absolute timeout, however active.
    Absolute,
}

impl SessionTimes {
    /// A session is valid up to and including the second before an expiry instant.
    pub fn check(&self, now: Timestamp) -> Result<(), Expired> {
        if now >= self.absolute_expires_at {
            Err(Expired::Absolute)
        } else if now >= self.idle_expires_at {
            Err(Expired::Idle)
        } else {
            Ok(())
        }
    }

    /// Activity at `now` slides the idle expiry forward, never past the absolute expiry.
    pub fn touch(&self, policy: &SessionPolicy, now: Timestamp) -> SessionTimes {
        SessionTimes {
            idle_expires_at: (now + policy.idle_timeout).min(self.absolute_expires_at),
            ..*self
        }
    }

    /// Activity at `now`, as it is stored: the slid times when they moved by at least the policy's
    /// [`SessionPolicy::write_back_step`], `None` when the stored ones stand (no write). A session
    /// therefore expires at most one step earlier than an exact sliding expiry would have it.
    pub fn touched(&self, policy: &SessionPolicy, now: Timestamp) -> Option<SessionTimes> {
        let slid = self.touch(policy, now);
        (slid.idle_expires_at - self.idle_expires_at >= policy.write_back_step()).then_some(slid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2026-01-01 00:00 UTC);
    const POLICY: SessionPolicy = SessionPolicy::DEFAULT;

    #[test]
    fn check_at_the_edges() {
        let times = POLICY.start(T0);
        let cases = [
            (Duration::ZERO, Ok(())),
            (Duration::minutes(30) - Duration::SECOND, Ok(())),
            (Duration::minutes(30), Err(Expired::Idle)),
            (Duration::minutes(31), Err(Expired::Idle)),
            (Duration::hours(12), Err(Expired::Absolute)),
            (Duration::days(61), Err(Expired::Absolute)),
        ];
        for (after, expected) in cases {
            assert_eq!(times.check(T0 + after), expected, "{after}");
        }
    }

    #[test]
    fn activity_slides_idle_expiry_but_never_the_absolute_one() {
        let mut times = POLICY.start(T0);
        // Active every 29 minutes for 13 hours: the idle timeout never fires, the absolute one does.
        let mut now = T0;
        let mut first_refusal = None;
        while now < T0 + Duration::hours(13) {
            now += Duration::minutes(29);
            match times.check(now) {
                Ok(()) => times = times.touch(&POLICY, now),
                Err(why) => {
                    first_refusal = Some((now, why));
                    break;
                }
            }
            assert_eq!(times.absolute_expires_at, T0 + Duration::hours(12));
            assert!(times.idle_expires_at <= times.absolute_expires_at);
        }
        let (at, why) = first_refusal.expect("the absolute timeout ends the session");
        assert_eq!(why, Expired::Absolute);
        assert!(
            at >= T0 + Duration::hours(12) && at < T0 + Duration::hours(12) + Duration::minutes(29)
        );
    }

    #[test]
    fn activity_is_written_back_once_per_step() {
        let times = POLICY.start(T0);
        let minute = Duration::minutes(1);
        let cases = [
            (Duration::ZERO, None),
            (Duration::seconds(59), None),
            (minute, Some(T0 + minute + POLICY.idle_timeout)),
            (Duration::minutes(29), Some(T0 + Duration::minutes(59))),
        ];
        for (after, expected) in cases {
            let written = times.touched(&POLICY, T0 + after).map(|t| t.idle_expires_at);
            assert_eq!(written, expected, "{after}");
        }
        let short = SessionPolicy { idle_timeout: Duration::minutes(5), ..POLICY };
        assert_eq!(short.write_back_step(), Duration::seconds(10));
        assert_eq!(POLICY.write_back_step(), minute);
        // Near the absolute end the idle expiry cannot move a whole step: nothing to write.
        let late = T0 + POLICY.absolute_timeout - Duration::minutes(30);
        let ending = times.touch(&POLICY, late);
        assert_eq!(ending.touched(&POLICY, late + Duration::minutes(5)), None);
    }

    #[test]
    fn idle_expiry_is_capped_by_absolute_expiry() {
        let policy = SessionPolicy {
            idle_timeout: Duration::hours(2),
            absolute_timeout: Duration::hours(1),
        };
        let times = policy.start(T0);
        assert_eq!(times.idle_expires_at, T0 + Duration::hours(1));
        let touched = times.touch(&policy, T0 + Duration::minutes(50));
        assert_eq!(touched.idle_expires_at, T0 + Duration::hours(1));
        assert_eq!(touched.started_at, T0);
    }
}
