//! The server-state inspector: what the server's database holds for the demo user, live.
//!
//! It reads `GET /api/demo/inspector` after every request the page makes, without recording its
//! own reads in the timeline (they are not part of the lesson). The server sends hashes as short
//! prefixes only; nothing secret reaches this panel.

use leptos::prelude::*;
use time::OffsetDateTime;
use tokenlab_core::wire::{InspectorQuery, ServerState};

use crate::api::{self, ApiFailure};
use crate::client::ApiClient;
use crate::lab::{current_owner, spawn_owned};

/// What a cell shows for an absent value.
const NONE: &str = "—";

/// `2026-11-27T20:31:00Z` → `11-27 20:31:00`: the year is noise at the lab's time scales.
fn short_time(at: OffsetDateTime) -> String {
    format!(
        "{:02}-{:02} {:02}:{:02}:{:02}",
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn maybe_time(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| NONE.to_owned(), short_time)
}

fn maybe<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| NONE.to_owned(), |v| v.to_string())
}

/// One row of a table: its `data-state` and its cells, in the table's column order.
struct Row {
    state: String,
    cells: Vec<String>,
}

impl Row {
    fn new(state: &str, cells: Vec<String>) -> Self {
        Self { state: state.to_owned(), cells }
    }
}

fn sessions(state: &ServerState) -> Vec<Row> {
    state
        .sessions
        .iter()
        .map(|s| {
            let cells = vec![
                s.cookie.clone(),
                s.id_hash_prefix.clone(),
                maybe(s.device_id.as_ref()),
                short_time(s.times.idle_expires_at),
                short_time(s.times.absolute_expires_at),
                s.state.as_str().to_owned(),
            ];
            Row::new(s.state.as_str(), cells)
        })
        .collect()
}

fn devices(state: &ServerState) -> Vec<Row> {
    state
        .devices
        .iter()
        .map(|d| {
            let cells = vec![
                d.device_id.clone(),
                d.mode.as_str().to_owned(),
                d.stored_token.clone(),
                maybe(d.previous_hash_prefix.as_ref()),
                maybe_time(d.rotated_at),
                maybe_time(d.expires_at),
                d.state.as_str().to_owned(),
            ];
            Row::new(d.state.as_str(), cells)
        })
        .collect()
}

fn form_tokens(state: &ServerState) -> Vec<Row> {
    state
        .form_tokens
        .iter()
        .map(|t| {
            let cells =
                vec![t.hash_prefix.clone(), short_time(t.expires_at), maybe(t.spent_on_order)];
            Row::new(NONE, cells)
        })
        .collect()
}

fn idempotency_keys(state: &ServerState) -> Vec<Row> {
    state
        .idempotency_keys
        .iter()
        .map(|k| {
            let cells = vec![
                k.key.clone(),
                k.state.as_str().to_owned(),
                maybe(k.response_status),
                short_time(k.expires_at),
            ];
            Row::new(k.state.as_str(), cells)
        })
        .collect()
}

fn orders(state: &ServerState) -> Vec<Row> {
    state
        .orders
        .iter()
        .map(|o| Row::new(NONE, vec![o.id.to_string(), o.item.clone(), o.quantity.to_string()]))
        .collect()
}

#[component]
pub fn Inspector() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let owner = current_owner();
    let state = RwSignal::new(None::<Result<ServerState, String>>);
    let username = RwSignal::new(crate::lab::USERNAME.to_owned());
    // Reads overlap when requests come quickly; only the newest may land, or an older snapshot
    // could arrive last and stay on screen.
    let latest = StoredValue::new(0_u64);
    let load = move || {
        latest.update_value(|n| *n += 1);
        let this_read = latest.get_value();
        let query = InspectorQuery { username: Some(username.get_untracked()) };
        spawn_owned(owner, async move {
            let result = match api::server_state(&client.unrecorded(), &query).await {
                Ok(answer) => Ok(answer.into_body()),
                Err(failure) if failure.status() == Some(404) => {
                    Err("the inspector exists only in the demo profile".to_owned())
                }
                Err(ApiFailure::NoAnswer(err)) => Err(err),
                Err(failure) => Err(match (failure.status(), failure.reason()) {
                    (Some(status), Some(reason)) => format!("{status} {reason}"),
                    (Some(status), None) => format!("{status} {NONE}"),
                    (None, _) => failure.to_string(),
                }),
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
                      columns: &'static [&'static str],
                      rows: fn(&ServerState) -> Vec<Row>| {
        move || {
            let Some(Ok(current)) = state.get() else { return ().into_any() };
            let found = rows(&current);
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
                                    <thead><tr>{columns.iter().map(|label| view! { <th>{*label}</th> }).collect_view()}</tr></thead>
                                    <tbody>
                                        {found
                                            .into_iter()
                                            .map(|row| {
                                                view! {
                                                    <tr data-state=row.state>
                                                        {row.cells
                                                            .into_iter()
                                                            .map(|value| view! { <td>{value}</td> })
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
        let found = current.refresh_families;
        view! {
            <div class="inspector-table" data-testid="inspector-refresh_families">
                <h3>"Refresh-token families " <span class="count">{found.len()}</span></h3>
                {if found.is_empty() {
                    view! { <p class="muted">"No refresh tokens: log in with the access + refresh scheme."</p> }.into_any()
                } else {
                    view! {
                        <ul class="families">
                            {found
                                .into_iter()
                                .map(|family| {
                                    let state = family.state.clone();
                                    view! {
                                        <li data-state=state>
                                            <span class="family-id">"family " <code>{family.id_prefix}</code></span>
                                            " "
                                            <span class="badge">{family.state}</span>
                                            " ends " {short_time(family.absolute_expires_at)}
                                            <ol class="chain">
                                                {family
                                                    .tokens
                                                    .into_iter()
                                                    .map(|token| {
                                                        view! {
                                                            <li data-state=token.state.as_str()>
                                                                <code>{token.hash_prefix}</code>
                                                                " "
                                                                <span class="badge">{token.state.as_str()}</span>
                                                                " expires " {short_time(token.expires_at)}
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
                        "server now: " {short_time(current.now)}
                        " · cross-site requests refused (all users): "
                        <span data-testid="cross-site-refusals">{current.cross_site_refusals}</span>
                    </p>
                }.into_any(),
            }}
            {table("sessions", "Server sessions", "No server session: nothing to look a cookie up in.",
                &["cookie", "id (SHA-256)", "device", "idle until", "absolute end", "state"],
                sessions)}
            {table("devices", "Devices", "No device token stored.",
                &["device id", "mode", "stored to check the token", "previous", "rotated", "token expires", "state"],
                devices)}
            {families}
            {table("form_tokens", "One-time form tokens", "No form token issued.",
                &["token (SHA-256)", "expires", "spent on order"],
                form_tokens)}
            {table("idempotency_keys", "Idempotency keys", "No Idempotency-Key seen.",
                &["key", "state", "stored response", "forgotten at"],
                idempotency_keys)}
            {table("orders", "Orders", "No orders.", &["#", "item", "quantity"], orders)}
        </section>
    }
}
