//! The article's third section: the same form, submitted twice, must make one order.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use tokenlab_core::Reason;
use tokenlab_core::wire::{CreatedOrder, NewOrder, Order};

use crate::api::{self, ApiFailure, ApiResult, Credential, DeviceCredentials, Network};
use crate::client::{ApiClient, pause, random_key};
use crate::storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protection {
    FormToken,
    IdempotencyKey,
}

/// One prepared submission: everything a retry must repeat exactly.
#[derive(Debug, Clone)]
struct Submission {
    order: NewOrder,
    idempotency_key: Option<String>,
}

/// What one attempt's answer means, in the words the panel shows.
fn describe(attempt: &str, result: &ApiResult<CreatedOrder>) -> (bool, String) {
    match result {
        Err(ApiFailure::NoAnswer(err)) => (false, format!("{attempt}: no response — {err}")),
        Ok(created) if created.status() == 201 => {
            let id = created.order.id;
            if created.header("idempotent-replayed") == Some("true") {
                (
                    true,
                    format!(
                        "{attempt}: 201 replayed — the server sent back the stored response for order #{id}; nothing new was created"
                    ),
                )
            } else {
                (true, format!("{attempt}: 201 — order #{id} placed"))
            }
        }
        Ok(other) => (false, format!("{attempt}: {}", other.status())),
        Err(failure) => match failure.refusal() {
            Some(refusal) if refusal.reason == Reason::DuplicateSubmit => {
                let id = failure.details().and_then(|d| d.original_order_id).unwrap_or_default();
                (
                    true,
                    format!(
                        "{attempt}: 409 duplicate_submit — recognised as a duplicate of order #{id}; nothing new was created"
                    ),
                )
            }
            Some(refusal) => (
                false,
                format!(
                    "{attempt}: {} {} — {}",
                    refusal.status,
                    refusal.reason,
                    refusal.explanation()
                ),
            ),
            None => (false, format!("{attempt}: {failure}")),
        },
    }
}

/// "not_logged_in — no session": why the orders or a form token could not be had.
fn refused_because(failure: &ApiFailure) -> String {
    match failure.refusal() {
        Some(refusal) => format!("{} — {}", refusal.reason, refusal.message),
        None => failure.to_string(),
    }
}

#[component]
pub fn OrdersPanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let item = RwSignal::new("green tea".to_owned());
    let quantity = RwSignal::new(1_i64);
    let protection = RwSignal::new(Protection::FormToken);
    let slow = RwSignal::new(false);
    let delay_ms = RwSignal::new(2000_u64);
    let busy = RwSignal::new(false);
    let log = RwSignal::new(Vec::<(bool, String)>::new());
    let orders = RwSignal::new(None::<Result<Vec<Order>, String>>);
    // Which scheme's credential the order calls carry: the session cookie, or the device headers.
    let as_device = RwSignal::new(false);
    let credential = move || {
        if !as_device.get_untracked() {
            return Credential::Cookies;
        }
        Credential::Device(crate::logins::device_credentials().unwrap_or(DeviceCredentials {
            id: storage::get(crate::components::device::DEVICE_ID_KEY).unwrap_or_default(),
            token: String::new(),
            key: None,
        }))
    };

    let refresh = move || {
        spawn_local(async move {
            let result = api::orders(&client, &credential()).await;
            orders.set(Some(match result {
                Ok(list) => Ok(list.into_body().orders),
                Err(ApiFailure::NoAnswer(err)) => Err(err),
                Err(failure) => Err(refused_because(&failure)),
            }));
        });
    };

    // Prepares a submission: a fresh form token from the server, or a fresh random key.
    let prepare = move || async move {
        let order = NewOrder {
            item: item.get_untracked(),
            quantity: quantity.get_untracked(),
            form_token: None,
        };
        match protection.get_untracked() {
            Protection::FormToken => match api::form_token(&client, &credential()).await {
                Ok(token) => Ok(Submission {
                    order: NewOrder { form_token: Some(token.into_body().form_token), ..order },
                    idempotency_key: None,
                }),
                Err(ApiFailure::NoAnswer(err)) => Err(err),
                Err(failure) => Err(format!("no form token: {}", refused_because(&failure))),
            },
            Protection::IdempotencyKey => {
                Ok(Submission { order, idempotency_key: Some(random_key()) })
            }
        }
    };

    let send = move |submission: Submission, delay: Option<u64>, timeout: Option<Duration>| async move {
        let network = Network { server_delay_ms: delay, client_timeout: timeout };
        api::place_order(
            &client,
            &credential(),
            &submission.order,
            submission.idempotency_key.as_deref(),
            network,
        )
        .await
    };

    let chosen_delay = move || slow.get_untracked().then(|| delay_ms.get_untracked());

    let run = move |scenario: &'static str| {
        busy.set(true);
        log.set(Vec::new());
        spawn_local(async move {
            let submission = match prepare().await {
                Ok(s) => s,
                Err(err) => {
                    log.set(vec![(false, err)]);
                    busy.set(false);
                    return;
                }
            };
            match scenario {
                "once" => {
                    let result = send(submission, chosen_delay(), None).await;
                    log.update(|l| l.push(describe("submission", &result)));
                }
                "double" => {
                    // The second click while the first is still in flight: same token or key.
                    let first = send(submission.clone(), chosen_delay(), None);
                    let second = send(submission, chosen_delay(), None);
                    let (a, b) = futures::join!(first, second);
                    log.update(|l| {
                        l.push(describe("first click", &a));
                        l.push(describe("second click", &b));
                    });
                }
                _ => {
                    // A client that gives up after 1 s while the server takes longer, then retries
                    // the very same submission, as a phone on a bad network would.
                    let slow_server = chosen_delay().unwrap_or(2500).max(1500);
                    let first = send(
                        submission.clone(),
                        Some(slow_server),
                        Some(Duration::from_millis(1000)),
                    )
                    .await;
                    log.update(|l| l.push(describe("attempt 1", &first)));
                    let mut attempt = 2;
                    loop {
                        let retry = send(submission.clone(), None, None).await;
                        let in_use = matches!(
                            &retry,
                            Err(failure) if failure.reason() == Some(Reason::IdempotencyKeyInUse)
                        );
                        log.update(|l| {
                            l.push(describe(&format!("attempt {attempt} (retry)"), &retry))
                        });
                        if !in_use || attempt >= 12 {
                            break;
                        }
                        attempt += 1;
                        pause(Duration::from_millis(500)).await;
                    }
                }
            }
            busy.set(false);
            refresh();
        });
    };

    view! {
        <section class="panel orders" data-testid="orders-panel" aria-labelledby="orders-title">
            <h2 id="orders-title">"Place an order — duplicate submits"</h2>
            <p class="muted">
                "On a bad network a form can arrive twice: a double click, or a retry after a timeout whose first "
                "attempt did succeed. The server must act once. Sign in on the session or the device panel first."
            </p>
            <div class="order-form">
                <label>"Item" <input name="item" prop:value=item on:input=move |ev| item.set(event_target_value(&ev))/></label>
                <label>
                    "Quantity"
                    <input name="quantity" type="number" min="1" max="99" prop:value=move || quantity.get().to_string()
                        on:input=move |ev| quantity.set(event_target_value(&ev).parse().unwrap_or(0))/>
                </label>
                <fieldset>
                    <legend>"Signed in with"</legend>
                    <label class="inline">
                        <input type="radio" name="order-scheme" prop:checked=move || !as_device.get()
                            on:change=move |_| as_device.set(false)/>
                        "session cookie"
                    </label>
                    <label class="inline">
                        <input type="radio" name="order-scheme" prop:checked=move || as_device.get()
                            on:change=move |_| as_device.set(true)/>
                        "device token"
                    </label>
                </fieldset>
                <fieldset>
                    <legend>"Protection"</legend>
                    <label class="inline">
                        <input type="radio" name="protection" prop:checked=move || protection.get() == Protection::FormToken
                            on:change=move |_| protection.set(Protection::FormToken)/>
                        "one-time form token (the article)"
                    </label>
                    <label class="inline">
                        <input type="radio" name="protection" prop:checked=move || protection.get() == Protection::IdempotencyKey
                            on:change=move |_| protection.set(Protection::IdempotencyKey)/>
                        "Idempotency-Key header (IETF draft)"
                    </label>
                </fieldset>
                <label class="inline">
                    <input type="checkbox" name="slow" prop:checked=slow on:change=move |ev| slow.set(event_target_checked(&ev))/>
                    "slow network: the server holds each request for"
                    <select on:change=move |ev| delay_ms.set(event_target_value(&ev).parse().unwrap_or(2000))>
                        <option value="1000">"1 s"</option>
                        <option value="2000" selected>"2 s"</option>
                        <option value="4000">"4 s"</option>
                    </select>
                </label>
            </div>
            <div class="actions">
                <button disabled=move || busy.get() on:click=move |_| run("once")>"Place order"</button>
                <button disabled=move || busy.get() on:click=move |_| run("double")>"Double-click (send twice)"</button>
                <button disabled=move || busy.get() on:click=move |_| run("retry")>"Retry after timeout"</button>
                <button on:click=move |_| refresh()>"Refresh orders"</button>
            </div>
            <ul class="attempts" data-testid="order-attempts">
                {move || log.get().into_iter().map(|(good, text)| view! { <li class:good=good class:bad=!good>{text}</li> }).collect_view()}
            </ul>
            {move || match orders.get() {
                None => view! { <p class="muted">"Your orders appear here after a submission."</p> }.into_any(),
                Some(Err(err)) => view! { <p class="refusal" role="alert">"Orders unavailable: " {err}</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <p class="muted" data-testid="order-count">{format!("{} order(s)", list.len())}</p>
                    <ul class="order-list" data-testid="order-list">
                        {list.into_iter().map(|o| view! { <li data-order-id=o.id>"#" {o.id} " — " {o.quantity} " × " {o.item}</li> }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}
