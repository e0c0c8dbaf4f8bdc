//! The server-state inspector: what the server's database holds for the demo user, live.
//!
//! It reads `GET /api/demo/inspector` after every request the page makes, without recording its
//! own reads in the timeline (they are not part of the lesson). The server sends hashes as short
//! prefixes only; nothing secret reaches this panel.

use leptos::prelude::*;
use serde_json::Value;

use crate::client::ApiClient;
use crate::lab::{current_owner, spawn_owned};

fn text(row: &Value, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "—".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// `2026-11-27T20:31:00Z` → `11-27 20:31:00`: the year is noise at the lab's time scales.
fn short_time(row: &Value, key: &str) -> String {
    let full = text(row, key);
    match (full.get(5..10), full.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => full,
    }
}

fn rows(state: &Value, key: &str) -> Vec<Value> {
    state.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

#[component]
pub fn Inspector() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let owner = current_owner();
    let state = RwSignal::new(None::<Result<Value, String>>);
    let username = RwSignal::new(crate::lab::USERNAME.to_owned());
    // Reads overlap when requests come quickly; only the newest may land, or an older snapshot
    // could arrive last and stay on screen.
    let latest = StoredValue::new(0_u64);
    let load = move || {
        latest.update_value(|n| *n += 1);
        let this_read = latest.get_value();
        let path = format!("/api/demo/inspector?username={}", username.get_untracked());
        spawn_owned(owner, async move {
            let result = match client.peek(&path).await {
                Ok(response) if response.ok() => Ok(response.body),
                Ok(response) if response.status == 404 => {
                    Err("the inspector exists only in the demo profile".to_owned())
                }
                Ok(response) => {
                    Err(format!("{} {}", response.status, text(&response.body, "reason")))
                }
                Err(err) => Err(err),
            };
            if latest.get_value() == this_read {
                state.set(Some(result));
            }
        });
    };
    // Every request the page makes may change the rows: read them again after each.
    let timeline = client.timeline();
    Effect::new(move |_| {
        timeline.with(|entries| entries.len());
        load();
    });

    let table = move |key: &'static str,
                      title: &'static str,
                      empty: &'static str,
                      columns: &'static [(&'static str, &'static str)]| {
        move || {
            let Some(Ok(current)) = state.get() else { return ().into_any() };
            let found = rows(&current, key);
            view! {
                <div class="inspector-table" data-testid=format!("inspector-{key}")>
                    <h3>{title} " " <span class="count">{found.len()}</span></h3>
                    {if found.is_empty() {
                        view! { <p class="muted">{empty}</p> }.into_any()
                    } else {
                        view! {
                            // Wider than the panel, a table scrolls sideways inside it, with a
                            // shadow at each edge that hides columns (frontend/style.css).
                            <div class="table-scroll" tabindex="0" role="region" aria-label=format!("{title} (scrolls sideways)")>
                                <table>
                                    <thead><tr>{columns.iter().map(|(_, label)| view! { <th>{*label}</th> }).collect_view()}</tr></thead>
                                    <tbody>
                                        {found
                                            .iter()
                                            .map(|row| {
                                                view! {
                                                    <tr data-state=text(row, "state")>
                                                        {columns
                                                            .iter()
                                                            .map(|(field, _)| {
                                                                let value = if field.ends_with("_at") { short_time(row, field) } else { text(row, field) };
                                                                view! { <td>{value}</td> }
                                                            })
                                                            .collect_view()}
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }
                        .into_any()
                    }}
                </div>
            }
            .into_any()
        }
    };

    let families = move || {
        let Some(Ok(current)) = state.get() else { return ().into_any() };
        let found = rows(&current, "refresh_families");
        view! {
            <div class="inspector-table" data-testid="inspector-refresh_families">
                <h3>"Refresh-token families " <span class="count">{found.len()}</span></h3>
                {if found.is_empty() {
                    view! { <p class="muted">"No refresh tokens: log in with the access + refresh scheme."</p> }.into_any()
                } else {
                    view! {
                        <ul class="families">
                            {found
                                .iter()
                                .map(|family| {
                                    view! {
                                        <li data-state=text(family, "state")>
                                            <span class="family-id">"family " <code>{text(family, "id_prefix")}</code></span>
                                            " "
                                            <span class="badge">{text(family, "state")}</span>
                                            " ends " {short_time(family, "absolute_expires_at")}
                                            <ol class="chain">
                                                {rows(family, "tokens")
                                                    .iter()
                                                    .map(|token| {
                                                        view! {
                                                            <li data-state=text(token, "state")>
                                                                <code>{text(token, "hash_prefix")}</code>
                                                                " "
                                                                <span class="badge">{text(token, "state")}</span>
                                                                " expires " {short_time(token, "expires_at")}
                                                            </li>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </ol>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                    .into_any()
                }}
            </div>
        }
        .into_any()
    };

    view! {
        <section class="inspector" aria-labelledby="inspector-title" data-testid="inspector">
            <div class="timeline-head">
                <h2 id="inspector-title">"Server state"</h2>
                <button on:click=move |_| load()>"refresh"</button>
            </div>
            <p class="muted">
                "The rows the server keeps for one user, read from its database after every request. "
                "Hashes are cut to their first 8 characters; the server never sends a token or a whole hash here."
            </p>
            <form class="inspect-user" on:submit=move |ev| {
                ev.prevent_default();
                load();
            }>
                <label>
                    "User"
                    <input name="inspect-username" prop:value=move || username.get()
                        on:input=move |ev| username.set(event_target_value(&ev))/>
                </label>
                <button type="submit">"show"</button>
            </form>
            {move || match state.get() {
                None => view! { <p class="muted">"reading…"</p> }.into_any(),
                Some(Err(err)) => view! { <p class="error">{err}</p> }.into_any(),
                Some(Ok(current)) => view! {
                    <p class="muted">
                        "server now: " {short_time(&current, "now")}
                        " · cross-site requests refused (all users): "
                        <span data-testid="cross-site-refusals">{text(&current, "cross_site_refusals")}</span>
                    </p>
                }.into_any(),
            }}
            {table("sessions", "Server sessions", "No server session: nothing to look a cookie up in.", &[
                ("cookie", "cookie"),
                ("id_hash_prefix", "id (SHA-256)"),
                ("device_id", "device"),
                ("idle_expires_at", "idle until"),
                ("absolute_expires_at", "absolute end"),
                ("state", "state"),
            ])}
            {table("devices", "Devices", "No device token stored.", &[
                ("device_id", "device id"),
                ("mode", "mode"),
                ("stored_token", "stored to check the token"),
                ("previous_hash_prefix", "previous"),
                ("rotated_at", "rotated"),
                ("expires_at", "token expires"),
                ("state", "state"),
            ])}
            {families}
            {table("form_tokens", "One-time form tokens", "No form token issued.", &[
                ("hash_prefix", "token (SHA-256)"),
                ("expires_at", "expires"),
                ("spent_on_order", "spent on order"),
            ])}
            {table("idempotency_keys", "Idempotency keys", "No Idempotency-Key seen.", &[
                ("key", "key"),
                ("state", "state"),
                ("response_status", "stored response"),
                ("expires_at", "forgotten at"),
            ])}
            {table("orders", "Orders", "No orders.", &[
                ("id", "#"),
                ("item", "item"),
                ("quantity", "quantity"),
            ])}
        </section>
    }
}
