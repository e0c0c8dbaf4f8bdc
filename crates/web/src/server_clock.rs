//! The server's "now", shared by the header and every countdown on the page.
//!
//! Expiries are decided on the server's clock, which the demo can move days ahead of the browser's.
//! So countdowns are measured against the last "now" the server reported, advanced by the time the
//! browser has seen pass since.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use time::OffsetDateTime;
use tokenlab_core::Reason;
use tokenlab_core::wire::{ClockChange, ClockState};

use crate::api::{self, ApiFailure};
use crate::client::{ApiClient, browser_now_ms};

#[derive(Clone, Copy, PartialEq)]
pub struct ServerTime {
    pub now: OffsetDateTime,
    pub offset_seconds: i64,
    /// Browser time when `now` was read, so the display can tick without asking the server.
    read_at_ms: f64,
}

#[derive(Clone, PartialEq)]
pub enum ClockStatus {
    Loading,
    Known(ServerTime),
    /// Outside the demo profile the endpoint answers 404.
    NoDemoClock,
    Failed(String),
}

#[derive(Clone, Copy)]
pub struct ServerClock {
    status: RwSignal<ClockStatus>,
    tick_ms: RwSignal<f64>,
    client: ApiClient,
}

impl ServerClock {
    pub fn new(client: ApiClient) -> Self {
        Self { status: RwSignal::new(ClockStatus::Loading), tick_ms: RwSignal::new(0.0), client }
    }

    pub fn status(&self) -> ClockStatus {
        self.status.get()
    }

    /// Starts ticking and reads the clock. Called once, from an effect (so only in the browser).
    pub fn start(&self) {
        let tick_ms = self.tick_ms;
        tick_ms.set(browser_now_ms());
        set_interval(move || tick_ms.set(browser_now_ms()), Duration::from_secs(1));
        self.change(None);
    }

    pub fn advance(&self, seconds: i64) {
        self.change(Some(ClockChange { advance_seconds: Some(seconds), reset: None }));
    }

    pub fn reset(&self) {
        self.change(Some(ClockChange { advance_seconds: None, reset: Some(true) }));
    }

    /// Reads the clock again, after something other than these buttons moved it.
    pub fn refresh(&self) {
        self.change(None);
    }

    /// Takes the clock from an answer of `/api/demo/clock` that someone else asked for.
    pub fn observe(&self, clock: &ClockState) {
        self.status.set(known(clock));
    }

    fn change(&self, request: Option<ClockChange>) {
        let (client, status) = (self.client, self.status);
        spawn_local(async move {
            let result = match request {
                Some(change) => api::change_clock(&client, &change).await,
                None => api::clock(&client).await,
            };
            status.set(match result {
                Ok(clock) => known(&clock),
                Err(failure) => unknown(&failure),
            });
        });
    }

    /// The server's current time as best known, ticking every second. Without a demo clock the
    /// server runs on real time, which the browser's own clock approximates.
    pub fn now(&self) -> Option<OffsetDateTime> {
        let tick = self.tick_ms.get();
        match self.status.get() {
            ClockStatus::Known(t) => {
                let elapsed = ((tick - t.read_at_ms) / 1000.0).max(0.0).floor() as i64;
                Some(t.now + time::Duration::seconds(elapsed))
            }
            ClockStatus::NoDemoClock if tick > 0.0 => {
                OffsetDateTime::from_unix_timestamp((tick / 1000.0) as i64).ok()
            }
            _ => None,
        }
    }
}

fn known(clock: &ClockState) -> ClockStatus {
    // Proofs of possession are dated on the server's clock, as a client synchronised with its
    // server would date them.
    // The server's "now" against this browser's, which also corrects a browser clock that is
    // simply wrong; the answer's own travel time is well within the window.
    let browser_seconds = (browser_now_ms() / 1000.0) as i64;
    crate::dpop::set_clock_offset(clock.now.unix_timestamp() - browser_seconds);
    ClockStatus::Known(ServerTime {
        now: clock.now,
        offset_seconds: clock.offset_seconds,
        read_at_ms: browser_now_ms(),
    })
}

fn unknown(failure: &ApiFailure) -> ClockStatus {
    if failure.status() == Some(404) {
        return ClockStatus::NoDemoClock;
    }
    match failure {
        ApiFailure::NoAnswer(problem) => ClockStatus::Failed(problem.clone()),
        ApiFailure::Unexpected { .. } => {
            ClockStatus::Failed("unexpected clock response".to_owned())
        }
        refused => ClockStatus::Failed(format!(
            "{} {}",
            refused.reason().map_or("unknown", Reason::code),
            refused.message()
        )),
    }
}

impl ServerClock {
    /// A live "time left until `until`" on the server's clock, for a view.
    pub fn countdown(
        self,
        until: OffsetDateTime,
    ) -> impl Fn() -> String + Copy + Send + Sync + 'static {
        move || {
            self.now().map_or_else(
                || "…".to_owned(),
                |now| format_remaining((until - now).whole_seconds()),
            )
        }
    }
}

pub fn format_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The units a duration is read in, largest first.
const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3600, "h"), (60, "min"), (1, "s")];

/// "29 min 59 s", "11 h 58 min", "60 d 23 h" — two units are enough to read a countdown; a second
/// unit that is zero is left out ("30 d", "10 h", "31 min").
pub fn format_remaining(seconds: i64) -> String {
    if seconds <= 0 {
        return "expired".to_owned();
    }
    let Some(first) = UNITS.iter().position(|(size, _)| seconds >= *size) else {
        return "expired".to_owned();
    };
    let (size, name) = UNITS[first];
    let mut text = format!("{} {name}", seconds / size);
    if let Some((next, next_name)) = UNITS.get(first + 1) {
        let rest = seconds % size / next;
        if rest > 0 {
            text.push_str(&format!(" {rest} {next_name}"));
        }
    }
    text
}

/// `2592000` → "30 days", `900` → "15 min", `36000` → "10 h": a token lifetime as its preset
/// states it. A lifetime that is not a whole number of one unit reads as a countdown does
/// ("29 d 23 h").
pub fn format_lifetime(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s % 86_400 == 0 => {
            let days = s / 86_400;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format_remaining(s),
    }
}

pub fn format_offset(seconds: i64) -> String {
    if seconds == 0 {
        return "real time".to_owned();
    }
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, minutes) = (rest / 3600, (rest % 3600) / 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} d"));
    }
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if minutes > 0 || parts.is_empty() {
        parts.push(format!("{minutes} min"));
    }
    format!("{} ahead", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_naturally() {
        let cases = [
            (0, "real time"),
            (59, "0 min ahead"),
            (60, "1 min ahead"),
            (31 * 60, "31 min ahead"),
            (86_400, "1 d ahead"),
            (61 * 86_400 + 3600 + 120, "61 d 1 h 2 min ahead"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(format_offset(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn countdowns_read_naturally() {
        let cases = [
            (-5, "expired"),
            (0, "expired"),
            (1, "1 s"),
            (30 * 60 - 1, "29 min 59 s"),
            (12 * 3600 - 60, "11 h 59 min"),
            (61 * 86_400 - 1, "60 d 23 h"),
            // Whole units read cleanly: no "0 h", "0 min" or "0 s" after them.
            (59, "59 s"),
            (60, "1 min"),
            (31 * 60, "31 min"),
            (15 * 60, "15 min"),
            (3600, "1 h"),
            (3600 + 59, "1 h"),
            (10 * 3600, "10 h"),
            (86_400, "1 d"),
            (30 * 86_400, "30 d"),
            (60 * 86_400 + 60, "60 d"),
            (86_400 + 3600, "1 d 1 h"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(format_remaining(seconds), expected, "{seconds}");
        }
    }

    #[test]
    fn lifetimes_read_as_presets_state_them() {
        let cases = [
            (0, "0 s"),
            (61, "1 min 1 s"),
            (59, "59 s"),
            (300, "5 min"),
            (15 * 60, "15 min"),
            (90 * 60, "90 min"),
            (10 * 3600, "10 h"),
            (24 * 3600, "1 day"),
            (30 * 86_400, "30 days"),
            (60 * 86_400, "60 days"),
            (30 * 86_400 - 11, "29 d 23 h"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(format_lifetime(seconds), expected, "{seconds}");
        }
    }
}
