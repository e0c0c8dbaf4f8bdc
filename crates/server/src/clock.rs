//! The only place in tokenlab that reads the system time.

use tokenlab_core::{Clock, Timestamp};

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // Second precision: every stored expiry is in whole seconds, and a sub-second "now" would make
        // a freshly written expiry compare unequal to itself after a round trip through the database.
        let now = time::OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

pub fn unix_seconds(t: Timestamp) -> i64 {
    t.unix_timestamp()
}

/// A timestamp column (Unix seconds, see `migrations/`) back into a time. Out of range only if the
/// row was written by something other than this server.
pub fn from_unix_seconds(seconds: i64) -> Result<Timestamp, crate::error::ApiError> {
    Timestamp::from_unix_timestamp(seconds).map_err(crate::error::ApiError::internal)
}
