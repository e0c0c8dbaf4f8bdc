//! `X-Demo-Delay-Ms`: in the demo profile, a request can ask to be held this long after it was
//! authenticated, as a slow network or a body dripped by an attacker would hold it. The lab uses it
//! to put a request in flight across a double submit, a logout or an expiry; a device re-attach is
//! held between finding its device and attaching the new session, the window a revocation can fall
//! into. Outside the demo profile the header means nothing.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName};

use crate::state::AppState;

/// By its `HeaderName`: in the demo profile every `/device/me` call asks for it, and a name given
/// as text is parsed on every lookup (#14).
static DELAY_HEADER: HeaderName = HeaderName::from_static("x-demo-delay-ms");
const MAX_DELAY_MS: u64 = 10_000;

/// The delay this request asked for, if the demo profile honours one (at most 10 s).
pub fn requested(state: &AppState, headers: &HeaderMap) -> Option<Duration> {
    state.demo_clock.as_ref()?;
    let ms: u64 = headers.get(&DELAY_HEADER)?.to_str().ok()?.parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms.min(MAX_DELAY_MS)))
}

pub async fn hold(delay: Option<Duration>) {
    if let Some(delay) = delay {
        // Boxed: a timer inline would enlarge the future of every call that may be held, though
        // only the lab's demonstrations are (#14).
        Box::pin(tokio::time::sleep(delay)).await;
    }
}
