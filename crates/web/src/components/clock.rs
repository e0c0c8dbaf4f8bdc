//! The header: the server's "now" and the buttons that move it.

use leptos::prelude::*;

use crate::server_clock::{ClockStatus, ServerClock, format_offset, format_time};

/// The steps match the article's lifetimes: 31 min passes a 30-minute session idle timeout,
/// 31 days a one-month access token, 61 days a two-month refresh token.
const STEPS: &[(&str, i64)] = &[
    ("+1 min", 60),
    ("+31 min", 31 * 60),
    ("+1 day", 24 * 3600),
    ("+31 days", 31 * 24 * 3600),
    ("+61 days", 61 * 24 * 3600),
];

#[component]
pub fn ClockBar() -> impl IntoView {
    let clock = expect_context::<ServerClock>();
    Effect::new(move |_| clock.start());

    let shown_now = move || match clock.status() {
        ClockStatus::Known(_) => clock.now().map(format_time).unwrap_or_default(),
        ClockStatus::Loading => "…".to_owned(),
        ClockStatus::NoDemoClock => "system time (no demo clock in this profile)".to_owned(),
        ClockStatus::Failed(err) => format!("unavailable: {err}"),
    };
    let shown_offset = move || match clock.status() {
        ClockStatus::Known(t) => format_offset(t.offset_seconds),
        _ => String::new(),
    };
    let movable = move || matches!(clock.status(), ClockStatus::Known(_));

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
                            <button disabled=move || !movable() on:click=move |_| clock.advance(seconds)>
                                {*label}
                            </button>
                        }
                    })
                    .collect_view()}
                <button disabled=move || !movable() on:click=move |_| clock.reset()>
                    "reset"
                </button>
            </div>
        </header>
    }
}
