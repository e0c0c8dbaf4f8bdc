//! Every API call the page made, newest first.

use leptos::prelude::*;

use crate::client::ApiClient;

#[component]
pub fn Timeline() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let entries = client.timeline();
    view! {
        <section class="timeline" aria-labelledby="timeline-title">
            <div class="timeline-head">
                <h2 id="timeline-title">"Request timeline"</h2>
                <button on:click=move |_| client.clear_timeline()>"clear"</button>
            </div>
            <p class="muted">
                "What the page sent and received, and which server instance answered (several can "
                "stand behind one load balancer). Secrets are masked; cookies appear by name only, "
                "because HttpOnly cookies are invisible to the page's JavaScript."
            </p>
            <ol data-testid="timeline">
                <For each=move || entries.get() key=|entry| entry.id let:entry>
                    <li
                        class="entry"
                        class:failed=entry.status.is_none_or(|s| s >= 400)
                        data-status=entry.status.map(|s| s.to_string())
                        data-reason=entry.reason.clone()
                    >
                        <div class="line">
                            {entry.sender.map(|who| view! { <span class="sender">{who}</span> })}
                            <span class="method">{entry.method.as_str()}</span>
                            <code class="path">{entry.path.clone()}</code>
                            <span class="status">
                                {entry.status.map_or_else(|| "no response".to_owned(), |s| s.to_string())}
                            </span>
                            {entry.reason.clone().map(|r| view! { <code class="reason">{r}</code> })}
                            <span class="duration">{format!("{:.0} ms", entry.duration_ms)}</span>
                            {entry
                                .instance
                                .clone()
                                .map(|name| {
                                    view! {
                                        <span
                                            class="instance"
                                            data-testid="instance"
                                            title="the server instance that answered (X-Tokenlab-Instance)"
                                        >
                                            {name}
                                        </span>
                                    }
                                })}
                        </div>
                        {entry.network_error.clone().map(|e| view! { <div class="error">{e}</div> })}
                        <ul class="headers">
                            {entry
                                .headers
                                .iter()
                                .map(|(direction, name, value)| {
                                    view! {
                                        <li>
                                            <span class="direction">{*direction}</span>
                                            " "
                                            <code>{name.clone()} ": " {value.clone()}</code>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    </li>
                </For>
            </ol>
        </section>
    }
}
