//! The header: the server's "now" and the buttons that move it.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{ApiClient, ApiResponse, browser_now_ms};

const STEPS: &[(&str, i64)] = &[
    ("+1 min", 60),
    ("+31 min", 31 * 60),
    ("+1 day", 24 * 3600),
    ("+31 days", 31 * 24 * 3600),
    ("+61 days", 61 * 24 * 3600),
];

#[derive(Clone, Copy, PartialEq)]
struct ServerTime {
    now: OffsetDateTime,
    offset_seconds: i64,
    /// Browser time when `now` was read, so the display can tick without asking the server.
    read_at_ms: f64,
}

#[derive(Clone, PartialEq)]
enum ClockStatus {
    Loading,
    Known(ServerTime),
    /// Outside the demo profile the endpoint answers 404.
    NoDemoClock,
    Failed(String),
}

fn parse(response: &ApiResponse) -> ClockStatus {
    if response.status == 404 {
        return ClockStatus::NoDemoClock;
    }
    if let Some(refusal) = response.refusal() {
        return ClockStatus::Failed(format!("{} {}", refusal.code, refusal.message));
    }
    let now = response
        .body
        .get("now")
        .and_then(|v| v.as_str())
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    let offset_seconds = response.body.get("offset_seconds").and_then(serde_json::Value::as_i64);
    match (now, offset_seconds) {
        (Some(now), Some(offset_seconds)) => {
            ClockStatus::Known(ServerTime { now, offset_seconds, read_at_ms: browser_now_ms() })
        }
        _ => ClockStatus::Failed("unexpected clock response".to_owned()),
    }
}

fn format_time(t: OffsetDateTime) -> String {
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

fn format_offset(seconds: i64) -> String {
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

#[component]
pub fn ClockBar() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let status = RwSignal::new(ClockStatus::Loading);
    let tick_ms = RwSignal::new(0.0_f64);

    let load = move |request: Option<serde_json::Value>| {
        spawn_local(async move {
            let result = match request {
                Some(body) => client.post("/api/demo/clock", body).await,
                None => client.get("/api/demo/clock").await,
            };
            status.set(match result {
                Ok(response) => parse(&response),
                Err(err) => ClockStatus::Failed(err),
            });
        });
    };

    Effect::new(move |_| {
        load(None);
        set_interval(move || tick_ms.set(browser_now_ms()), Duration::from_secs(1));
    });

    let shown_now = move || match status.get() {
        ClockStatus::Known(t) => {
            let elapsed = ((tick_ms.get() - t.read_at_ms) / 1000.0).max(0.0).floor() as i64;
            format_time(t.now + time::Duration::seconds(elapsed))
        }
        ClockStatus::Loading => "…".to_owned(),
        ClockStatus::NoDemoClock => "system time (no demo clock in this profile)".to_owned(),
        ClockStatus::Failed(err) => format!("unavailable: {err}"),
    };
    let shown_offset = move || match status.get() {
        ClockStatus::Known(t) => format_offset(t.offset_seconds),
        _ => String::new(),
    };
    let movable = move || matches!(status.get(), ClockStatus::Known(_));

    view! {
        <header class="clockbar">
            <h1>"tokenlab"</h1>
            <div class="clock" aria-live="polite">
                <span class="label">"server now"</span>
                <time data-testid="server-now">{shown_now}</time>
                <span class="offset" data-testid="clock-offset">{shown_offset}</span>
            </div>
            <div class="clock-buttons" role="group" aria-label="Move the demo clock">
                {STEPS
                    .iter()
                    .map(|(label, seconds)| {
                        let seconds = *seconds;
                        view! {
                            <button
                                disabled=move || !movable()
                                on:click=move |_| load(Some(json!({ "advance_seconds": seconds })))
                            >
                                {*label}
                            </button>
                        }
                    })
                    .collect_view()}
                <button disabled=move || !movable() on:click=move |_| load(Some(json!({ "reset": true })))>
                    "reset"
                </button>
            </div>
        </header>
    }
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
}
