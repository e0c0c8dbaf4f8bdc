//! Time as an injected dependency.
//!
//! Expiry rules are only testable if "now" can be chosen, so nothing in tokenlab reads the system
//! time except the server's one `SystemClock`. The demo profile wraps that in an [`OffsetClock`],
//! which is how the lab's "+31 min" button makes sessions expire without waiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// A point in time with second precision, as every expiry in tokenlab is stated in seconds.
pub type Timestamp = time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// A base clock moved forward by an adjustable number of seconds.
///
/// The offset only ever grows through [`OffsetClock::advance`] or returns to zero through
/// [`OffsetClock::reset`]; a clock that could go backwards would let a learner "un-expire" a token,
/// which teaches the wrong lesson.
pub struct OffsetClock<C> {
    base: C,
    offset_seconds: AtomicI64,
}

/// Why an advance of the demo clock was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceError {
    /// Zero or negative: time in the lab only moves forward.
    NotPositive,
    /// More than [`OffsetClock::MAX_ADVANCE_SECONDS`] in one step.
    TooLarge,
}

impl<C: Clock> OffsetClock<C> {
    /// One step may jump at most a year: enough for every policy in the lab, small enough that the
    /// accumulated offset can never overflow a timestamp.
    pub const MAX_ADVANCE_SECONDS: i64 = 366 * 24 * 60 * 60;
    /// The offset as a whole never exceeds ten years for the same reason.
    pub const MAX_OFFSET_SECONDS: i64 = 10 * 366 * 24 * 60 * 60;

    pub fn new(base: C) -> Self {
        Self { base, offset_seconds: AtomicI64::new(0) }
    }

    pub fn offset_seconds(&self) -> i64 {
        self.offset_seconds.load(Ordering::SeqCst)
    }

    /// Moves the clock forward and returns the new offset.
    pub fn advance(&self, seconds: i64) -> Result<i64, AdvanceError> {
        Self::check_step(seconds)?;
        let mut current = self.offset_seconds.load(Ordering::SeqCst);
        loop {
            let next = current + seconds;
            if next > Self::MAX_OFFSET_SECONDS {
                return Err(AdvanceError::TooLarge);
            }
            match self.offset_seconds.compare_exchange(
                current,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(next),
                Err(seen) => current = seen,
            }
        }
    }

    pub fn reset(&self) {
        self.offset_seconds.store(0, Ordering::SeqCst);
    }

    /// Whether one step of `seconds` may be taken at all, whatever the offset is: for a caller
    /// that keeps the offset elsewhere (several instances share one) and adds it there.
    pub fn check_step(seconds: i64) -> Result<(), AdvanceError> {
        if seconds <= 0 {
            Err(AdvanceError::NotPositive)
        } else if seconds > Self::MAX_ADVANCE_SECONDS {
            Err(AdvanceError::TooLarge)
        } else {
            Ok(())
        }
    }

    /// Takes an offset kept elsewhere (the one every instance shares), held to what
    /// [`OffsetClock::advance`] could have reached.
    pub fn adopt(&self, offset_seconds: i64) {
        self.offset_seconds
            .store(offset_seconds.clamp(0, Self::MAX_OFFSET_SECONDS), Ordering::SeqCst);
    }
}

impl<C: Clock> Clock for OffsetClock<C> {
    fn now(&self) -> Timestamp {
        self.base.now() + time::Duration::seconds(self.offset_seconds())
    }
}

/// A clock that stands still until told to move: for tests.
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self { now: Mutex::new(start) }
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const START: Timestamp = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn offset_clock_advances_and_resets() {
        struct Case {
            steps: Vec<i64>,
            expected: Result<i64, AdvanceError>,
        }
        let year = OffsetClock::<ManualClock>::MAX_ADVANCE_SECONDS;
        let cases = [
            Case { steps: vec![60], expected: Ok(60) },
            Case { steps: vec![60, 31 * 60], expected: Ok(60 + 31 * 60) },
            Case { steps: vec![0], expected: Err(AdvanceError::NotPositive) },
            Case { steps: vec![-5], expected: Err(AdvanceError::NotPositive) },
            Case { steps: vec![year + 1], expected: Err(AdvanceError::TooLarge) },
            Case { steps: vec![year; 11], expected: Err(AdvanceError::TooLarge) },
        ];
        for case in cases {
            let clock = OffsetClock::new(ManualClock::new(START));
            let mut last = Ok(0);
            for step in &case.steps {
                last = clock.advance(*step);
            }
            assert_eq!(last, case.expected, "steps {:?}", case.steps);
            if let Ok(offset) = case.expected {
                assert_eq!(clock.now(), START + time::Duration::seconds(offset));
            }
            clock.reset();
            assert_eq!(clock.now(), START);
        }
    }

    #[test]
    fn refused_advance_leaves_the_clock_alone() {
        let clock = OffsetClock::new(ManualClock::new(START));
        assert_eq!(clock.advance(100), Ok(100));
        assert_eq!(clock.advance(-1), Err(AdvanceError::NotPositive));
        assert_eq!(clock.offset_seconds(), 100);
    }

    #[test]
    fn adopted_offsets_stay_within_what_advancing_reaches() {
        let max = OffsetClock::<ManualClock>::MAX_OFFSET_SECONDS;
        let cases = [(0, 0), (3600, 3600), (-5, 0), (max, max), (max + 1, max), (i64::MAX, max)];
        for (adopted, offset) in cases {
            let clock = OffsetClock::new(ManualClock::new(START));
            clock.adopt(adopted);
            assert_eq!(clock.offset_seconds(), offset, "adopting {adopted}");
            assert_eq!(clock.now(), START + time::Duration::seconds(offset));
        }
    }

    #[test]
    fn steps_are_checked_alone() {
        let year = OffsetClock::<ManualClock>::MAX_ADVANCE_SECONDS;
        let cases = [
            (1, Ok(())),
            (year, Ok(())),
            (0, Err(AdvanceError::NotPositive)),
            (-1, Err(AdvanceError::NotPositive)),
            (year + 1, Err(AdvanceError::TooLarge)),
        ];
        for (seconds, expected) in cases {
            assert_eq!(OffsetClock::<ManualClock>::check_step(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(START);
        assert_eq!(clock.now(), START);
        clock.advance(time::Duration::minutes(31));
        assert_eq!(clock.now(), START + time::Duration::minutes(31));
    }
}
