//! The rules of tokenlab, free of I/O.
//!
//! Everything here is deterministic given its inputs: time arrives through [`clock::Clock`],
//! never from the system, so the server, the tests and the demo clock can all move it.

pub mod account;
pub mod bearer;
pub mod clock;
pub mod dbsc;
pub mod device;
pub mod display;
pub mod dpop;
pub mod password;
pub mod random;
pub mod reason;
pub mod request;
pub mod session;
pub mod signout;
pub mod submit;
pub mod throttle;
pub mod wire;

#[cfg(all(test, feature = "jwt"))]
mod test_jws;

pub use clock::{Clock, ManualClock, OffsetClock, Timestamp};
pub use reason::Reason;
