//! The race console: one form token, one Idempotency-Key or one refresh token, sent N times at
//! once, and what every copy was answered, per server instance.
//!
//! Behind a load balancer the copies land on several instances. The guarantees of the article's
//! third and fourth sections must hold all the same, because what decides them (the form token's
//! row, the key's claim, the refresh token's rotation) lives in the shared database and is
//! consumed there atomically, never in an instance's memory. The console checks that from the
//! answers alone, and from the orders list before and after.

use std::collections::BTreeMap;

use futures::future::join_all;
use leptos::prelude::*;
use leptos::task::spawn_local;
use tokenlab_core::Reason;
use tokenlab_core::bearer::RefreshOutcome;
use tokenlab_core::wire::NewOrder;

use crate::api::{self, ApiFailure, Credential, Network, RefreshFrom, RefreshIn};
use crate::client::{ApiClient, ApiResponse, monotonic_ms, random_key};

/// How many copies a race may send: enough to collide, few enough for a browser tab.
pub const MIN_COPIES: usize = 10;
pub const MAX_COPIES: usize = 200;

/// What the console races.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RaceKind {
    FormToken,
    IdempotencyKey,
    Refresh,
}

impl RaceKind {
    /// The guarantee the chapter states, shown beside the outcome.
    fn guarantee(self) -> &'static str {
        match self {
            RaceKind::FormToken => {
                "Chapter 3: a form token is consumed once, atomically, in the database. Exactly one \
                 copy makes the order; every other one is answered 409 duplicate_submit naming it."
            }
            RaceKind::IdempotencyKey => {
                "Chapter 3: one Idempotency-Key makes one order. A copy that arrives after it \
                 finished gets the stored answer again (Idempotent-Replayed: true); one that arrives \
                 while it is being processed gets 409 idempotency_key_in_use and may retry."
            }
            RaceKind::Refresh => {
                "Chapter 4: a refresh token rotates once. Copies inside the 10-second grace window \
                 get the same child again (X-Tokenlab-Refresh: repeated), and none of them is taken \
                 for a stolen copy: the family stays alive."
            }
        }
    }

    /// The outcome columns worth a column for this kind (the failures always have theirs).
    fn columns(self) -> &'static [Outcome] {
        match self {
            RaceKind::FormToken => &[Outcome::Created, Outcome::Duplicate],
            RaceKind::IdempotencyKey => &[Outcome::Created, Outcome::Replayed, Outcome::InUse],
            RaceKind::Refresh => &[Outcome::Rotated, Outcome::Repeated],
        }
    }
}

/// What one copy was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// 201: this copy made the order.
    Created,
    /// 409 `duplicate_submit`: the form token was already spent.
    Duplicate,
    /// 201 with `Idempotent-Replayed: true`: the stored answer of the key's order.
    Replayed,
    /// 409 `idempotency_key_in_use`: the key's order was still being made.
    InUse,
    /// 200, `X-Tokenlab-Refresh: rotated`.
    Rotated,
    /// 200, `X-Tokenlab-Refresh: repeated`: the child of the rotation a moment ago.
    Repeated,
    /// Any other refusal (4xx): the guarantee did not hold as the chapter says.
    Refused,
    /// 5xx.
    ServerError,
    /// No HTTP answer at all.
    NoAnswer,
}

const FAILURES: [Outcome; 3] = [Outcome::Refused, Outcome::ServerError, Outcome::NoAnswer];

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Duplicate => "duplicate",
            Outcome::Replayed => "replayed",
            Outcome::InUse => "in use",
            Outcome::Rotated => "rotated",
            Outcome::Repeated => "repeated",
            Outcome::Refused => "other refusal",
            Outcome::ServerError => "5xx",
            Outcome::NoAnswer => "no answer",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Duplicate => "duplicate",
            Outcome::Replayed => "replayed",
            Outcome::InUse => "in-use",
            Outcome::Rotated => "rotated",
            Outcome::Repeated => "repeated",
            Outcome::Refused => "refused",
            Outcome::ServerError => "server-error",
            Outcome::NoAnswer => "no-answer",
        }
    }
}

/// An order copy's outcome from its status (`None`: no answer), refusal reason and replay header.
pub fn order_outcome(status: Option<u16>, reason: Option<Reason>, replayed: bool) -> Outcome {
    match (status, reason) {
        (None, _) => Outcome::NoAnswer,
        (Some(201), _) if replayed => Outcome::Replayed,
        (Some(201), _) => Outcome::Created,
        (Some(409), Some(Reason::DuplicateSubmit)) => Outcome::Duplicate,
        (Some(409), Some(Reason::IdempotencyKeyInUse)) => Outcome::InUse,
        (Some(s), _) if s >= 500 => Outcome::ServerError,
        (Some(_), _) => Outcome::Refused,
    }
}

/// A refresh copy's outcome from its status and `X-Tokenlab-Refresh`.
pub fn refresh_outcome(status: Option<u16>, header: Option<&str>) -> Outcome {
    match (status, header.and_then(RefreshOutcome::parse)) {
        (None, _) => Outcome::NoAnswer,
        (Some(200), Some(RefreshOutcome::Rotated)) => Outcome::Rotated,
        (Some(200), Some(RefreshOutcome::Repeated)) => Outcome::Repeated,
        (Some(s), _) if s >= 500 => Outcome::ServerError,
        // A 200 that does not say what it did breaks the contract as much as a refusal does.
        (Some(_), _) => Outcome::Refused,
    }
}

/// One copy's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// `X-Tokenlab-Instance`, or "?" when the answer named none.
    pub instance: String,
    pub outcome: Outcome,
    /// From the page's send to the answer, the browser's own queue included.
    pub millis: f64,
    /// What the answer names: the order (made, duplicated or replayed), or the refresh child.
    pub names: Option<String>,
    /// A refusal's reason, or a transport error: what to show when the guarantee broke.
    pub detail: Option<String>,
}

/// The value at percentile `p` (nearest rank) of `values`, which need not be sorted.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// One line of the table: an instance, or all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub instance: String,
    pub counts: BTreeMap<Outcome, usize>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl Row {
    fn of<'a>(instance: String, shots: impl Iterator<Item = &'a Shot>) -> Self {
        let mut counts = BTreeMap::new();
        let mut millis = Vec::new();
        for shot in shots {
            *counts.entry(shot.outcome).or_default() += 1;
            millis.push(shot.millis);
        }
        Self { instance, counts, p50: percentile(&millis, 50.0), p99: percentile(&millis, 99.0) }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.counts.get(&outcome).copied().unwrap_or(0)
    }
}

/// A row per instance that answered (sorted by name), and the total.
pub fn tally(shots: &[Shot]) -> (Vec<Row>, Row) {
    let mut instances: Vec<&str> = shots.iter().map(|s| s.instance.as_str()).collect();
    instances.sort_unstable();
    instances.dedup();
    let rows = instances
        .into_iter()
        .map(|name| Row::of(name.to_owned(), shots.iter().filter(|s| s.instance == name)))
        .collect();
    (rows, Row::of("all".to_owned(), shots.iter()))
}

/// Whether the chapter's guarantee held, and why, in one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub held: bool,
    pub summary: String,
}

/// Judges a race of `kind` from its answers and, for orders, how many orders it added.
fn verdict(kind: RaceKind, shots: &[Shot], new_orders: Option<usize>) -> Verdict {
    let (_, total) = tally(shots);
    let n = shots.len();
    let named = |outcomes: &[Outcome]| {
        let mut names: Vec<&str> = shots
            .iter()
            .filter(|s| outcomes.contains(&s.outcome))
            .map(|s| s.names.as_deref().unwrap_or("nothing"))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let mut broken = Vec::new();
    for failure in FAILURES {
        let count = total.count(failure);
        if count > 0 {
            let example = shots
                .iter()
                .find(|s| s.outcome == failure)
                .and_then(|s| s.detail.clone())
                .unwrap_or_default();
            broken.push(format!("{count} × {} ({example})", failure.label()));
        }
    }
    let summary = match kind {
        RaceKind::FormToken | RaceKind::IdempotencyKey => {
            let created = total.count(Outcome::Created);
            if created != 1 {
                broken.push(format!("{created} copies made an order"));
            }
            let orders = named(&[Outcome::Created, Outcome::Duplicate, Outcome::Replayed]);
            if orders.len() > 1 {
                broken.push(format!("the answers name {} different orders", orders.len()));
            }
            match new_orders {
                Some(1) => {}
                Some(k) => broken.push(format!("the orders list grew by {k}")),
                None => broken.push("the orders list could not be read".to_owned()),
            }
            let order = orders.first().copied().unwrap_or("?");
            let others = if kind == RaceKind::FormToken {
                format!("{} × 409 duplicate_submit", total.count(Outcome::Duplicate))
            } else {
                format!(
                    "{} × replayed, {} × 409 idempotency_key_in_use",
                    total.count(Outcome::Replayed),
                    total.count(Outcome::InUse)
                )
            };
            format!(
                "1 order (#{order}) from {n} copies: {others}, all naming it; the orders list grew by 1."
            )
        }
        RaceKind::Refresh => {
            let rotated = total.count(Outcome::Rotated);
            if rotated != 1 {
                broken.push(format!("{rotated} copies rotated the token"));
            }
            let children = named(&[Outcome::Rotated, Outcome::Repeated]);
            if children.len() > 1 {
                broken.push(format!("the answers carry {} different children", children.len()));
            }
            format!(
                "1 rotation from {n} copies: {} × repeated with the same child, 0 taken for theft.",
                total.count(Outcome::Repeated)
            )
        }
    };
    if broken.is_empty() {
        Verdict { held: true, summary: format!("Held. {summary}") }
    } else {
        Verdict { held: false, summary: format!("Broken: {}.", broken.join("; ")) }
    }
}

/// Where the console is.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Idle,
    Running(String),
    Failed(String),
    Done { kind: RaceKind, shots: Vec<Shot>, verdict: Verdict },
}

fn instance_of(response: Option<&ApiResponse>) -> String {
    response.and_then(|r| r.header("x-tokenlab-instance")).unwrap_or("?").to_owned()
}

fn failure_detail(failure: &ApiFailure) -> String {
    match failure.reason() {
        Some(reason) => format!("{} {reason}", failure.status().unwrap_or_default()),
        None => failure.to_string(),
    }
}

/// One order copy: sent, timed, and classified.
async fn order_copy(client: ApiClient, order: NewOrder, key: Option<String>) -> Shot {
    let started = monotonic_ms();
    let result =
        api::place_order(&client, &Credential::Cookies, &order, key.as_deref(), Network::default())
            .await;
    let millis = monotonic_ms() - started;
    let response = api::raw(&result);
    let instance = instance_of(response);
    let replayed = response.and_then(|r| r.header("idempotent-replayed")) == Some("true");
    let (status, reason, names, detail) = match &result {
        Ok(created) => (Some(created.status()), None, Some(created.order.id.to_string()), None),
        Err(failure) => (
            failure.status(),
            failure.reason(),
            failure.details().and_then(|d| d.original_order_id).map(|id| id.to_string()),
            Some(failure_detail(failure)),
        ),
    };
    Shot { instance, outcome: order_outcome(status, reason, replayed), millis, names, detail }
}

/// One refresh copy of `token`.
async fn refresh_copy(client: ApiClient, token: String) -> Shot {
    let started = monotonic_ms();
    let result = api::refresh(&client, RefreshFrom::Token(&token)).await;
    let millis = monotonic_ms() - started;
    let response = api::raw(&result);
    let instance = instance_of(response);
    let header = response.and_then(|r| r.header(RefreshOutcome::HEADER)).map(str::to_owned);
    let (status, names, detail) = match &result {
        Ok(tokens) => (Some(tokens.status()), tokens.refresh_token.clone(), None),
        Err(failure) => (failure.status(), None, Some(failure_detail(failure))),
    };
    Shot { instance, outcome: refresh_outcome(status, header.as_deref()), millis, names, detail }
}

/// How many orders the signed-in user has, or why that cannot be read.
async fn order_count(client: &ApiClient) -> Result<usize, String> {
    match api::orders(client, &Credential::Cookies).await {
        Ok(list) => Ok(list.into_body().orders.len()),
        Err(failure) => Err(failure_detail(&failure)),
    }
}

fn fmt_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.0} ms"))
}

#[component]
pub fn RaceConsole() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let kind = RwSignal::new(RaceKind::FormToken);
    // As typed; read through `copies` below, clamped to what a race may send.
    let copies_typed = RwSignal::new("50".to_owned());
    let copies = move || {
        copies_typed
            .get()
            .trim()
            .parse::<usize>()
            .unwrap_or(MIN_COPIES)
            .clamp(MIN_COPIES, MAX_COPIES)
    };
    let username = RwSignal::new("alice".to_owned());
    let password = RwSignal::new(String::new());
    let stage = RwSignal::new(Stage::Idle);

    let fire = move |_| {
        let race = kind.get_untracked();
        let n = copies();
        copies_typed.set(n.to_string());
        stage.set(Stage::Running("preparing…".to_owned()));
        spawn_local(async move {
            // The preparation is part of the lesson and goes into the timeline; the copies would
            // bury it, so they are counted here instead.
            let burst = client.unrecorded();
            let (shots, new_orders) = match race {
                RaceKind::FormToken | RaceKind::IdempotencyKey => {
                    let before = match order_count(&client).await {
                        Ok(count) => count,
                        Err(why) => {
                            stage.set(Stage::Failed(format!(
                                "Orders need a sign-in: log in on the session panel first ({why})."
                            )));
                            return;
                        }
                    };
                    let mut order =
                        NewOrder { item: "race".to_owned(), quantity: 1, form_token: None };
                    let mut key = None;
                    if race == RaceKind::FormToken {
                        match api::form_token(&client, &Credential::Cookies).await {
                            Ok(token) => order.form_token = Some(token.into_body().form_token),
                            Err(failure) => {
                                stage.set(Stage::Failed(format!(
                                    "No form token: {}",
                                    failure_detail(&failure)
                                )));
                                return;
                            }
                        }
                    } else {
                        key = Some(random_key());
                    }
                    stage.set(Stage::Running(format!("{n} copies in flight…")));
                    let shots =
                        join_all((0..n).map(|_| order_copy(burst, order.clone(), key.clone())))
                            .await;
                    let after = order_count(&client).await.ok();
                    (shots, after.map(|after| after.saturating_sub(before)))
                }
                RaceKind::Refresh => {
                    let login = api::password_grant(
                        &client,
                        &username.get_untracked(),
                        &password.get_untracked(),
                        RefreshIn::Body,
                    )
                    .await;
                    let token = match login.map(|l| l.into_body().refresh_token) {
                        Ok(Some(token)) => token,
                        Ok(None) => {
                            stage.set(Stage::Failed(
                                "The login answered without a refresh token.".to_owned(),
                            ));
                            return;
                        }
                        Err(failure) => {
                            stage.set(Stage::Failed(format!(
                                "The login for the race was refused: {}",
                                failure_detail(&failure)
                            )));
                            return;
                        }
                    };
                    stage.set(Stage::Running(format!("{n} copies in flight…")));
                    let shots = join_all((0..n).map(|_| refresh_copy(burst, token.clone()))).await;
                    (shots, None)
                }
            };
            let verdict = verdict(race, &shots, new_orders);
            stage.set(Stage::Done { kind: race, shots, verdict });
        });
    };

    let running = move || matches!(stage.get(), Stage::Running(_));
    let kind_choice = move |value: RaceKind, label: &'static str| {
        view! {
            <label class="inline">
                <input type="radio" name="race-kind" prop:checked=move || kind.get() == value
                    on:change=move |_| kind.set(value)/>
                {label}
            </label>
        }
    };

    view! {
        <section class="panel race" data-testid="race-panel" aria-labelledby="race-title">
            <h2 id="race-title">"Race console — the same request, many times at once"</h2>
            <p class="muted">
                "Sends one form token, one Idempotency-Key or one refresh token N times at once and counts "
                "what every copy was answered, by the server instance that answered it. Behind "
                <code>"just stack"</code> "'s load balancer the copies are spread over instances A and B; "
                "on one server they all meet the same process. Times run from the page's send to the answer, "
                "the browser's own queue included (it opens a handful of connections to one host). The copies "
                "are counted here rather than listed in the timeline."
            </p>
            <div class="race-form">
                <fieldset>
                    <legend>"Race"</legend>
                    {kind_choice(RaceKind::FormToken, "an order with one form token")}
                    {kind_choice(RaceKind::IdempotencyKey, "an order with one Idempotency-Key")}
                    {kind_choice(RaceKind::Refresh, "a refresh of one refresh token")}
                </fieldset>
                <label>
                    "Copies"
                    <input name="copies" type="number" min=MIN_COPIES.to_string() max=MAX_COPIES.to_string()
                        prop:value=copies_typed
                        on:input=move |ev| copies_typed.set(event_target_value(&ev))/>
                </label>
                {move || (kind.get() == RaceKind::Refresh).then(|| view! {
                    <p class="muted">"The race logs in with the password grant for a refresh token of its own, as a native app would."</p>
                    <label>"Username" <input name="race-username" autocomplete="username" prop:value=username
                        on:input=move |ev| username.set(event_target_value(&ev))/></label>
                    <label>"Password" <input name="race-password" type="password" autocomplete="current-password" prop:value=password
                        on:input=move |ev| password.set(event_target_value(&ev))/></label>
                })}
                {move || (kind.get() != RaceKind::Refresh).then(|| view! {
                    <p class="muted">"Orders are placed as the session panel's user: log in there first."</p>
                })}
            </div>
            <div class="actions">
                <button disabled=running on:click=fire>
                    {move || format!("Fire {} at once", copies())}
                </button>
            </div>
            <p class="guarantee" data-testid="race-guarantee">{move || kind.get().guarantee()}</p>
            {move || match stage.get() {
                Stage::Idle => ().into_any(),
                Stage::Running(what) => view! { <p class="muted" data-testid="race-status">{what}</p> }.into_any(),
                Stage::Failed(why) => view! { <p class="refusal" role="alert" data-testid="race-status">{why}</p> }.into_any(),
                Stage::Done { kind, shots, verdict } => {
                    let (rows, total) = tally(&shots);
                    let columns: Vec<Outcome> = kind.columns().iter().copied().chain(FAILURES).collect();
                    let head = columns.clone();
                    let line = move |row: Row, is_total: bool| {
                        let cells = columns.iter().map(|outcome| view! {
                            <td data-outcome=outcome.key()>{row.count(*outcome)}</td>
                        }).collect_view();
                        view! {
                            <tr class:total=is_total data-instance=row.instance.clone()>
                                <th scope="row">{row.instance.clone()}</th>
                                {cells}
                                <td data-testid="p50">{fmt_ms(row.p50)}</td>
                                <td data-testid="p99">{fmt_ms(row.p99)}</td>
                            </tr>
                        }
                    };
                    view! {
                        <p class="verdict" class:good=verdict.held class:bad=!verdict.held
                            data-testid="race-verdict" data-held=verdict.held.to_string()>
                            {verdict.summary}
                        </p>
                        <div class="table-scroll">
                            <table class="race-table" data-testid="race-table">
                                <thead><tr>
                                    <th>"instance"</th>
                                    {head.into_iter().map(|o| view! { <th>{o.label()}</th> }).collect_view()}
                                    <th>"p50"</th>
                                    <th>"p99"</th>
                                </tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|row| line.clone()(row, false)).collect_view()}
                                    {line(total, true)}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_answers_are_classified_by_status_reason_and_replay() {
        let cases = [
            (None, None, false, Outcome::NoAnswer),
            (Some(201), None, false, Outcome::Created),
            (Some(201), None, true, Outcome::Replayed),
            (Some(409), Some(Reason::DuplicateSubmit), false, Outcome::Duplicate),
            (Some(409), Some(Reason::IdempotencyKeyInUse), false, Outcome::InUse),
            (Some(409), Some(Reason::IdempotencyKeyReused), false, Outcome::Refused),
            (Some(401), Some(Reason::NotLoggedIn), false, Outcome::Refused),
            (Some(503), Some(Reason::SessionStoreUnavailable), false, Outcome::ServerError),
            (Some(500), None, false, Outcome::ServerError),
        ];
        for (status, reason, replayed, expected) in cases {
            assert_eq!(order_outcome(status, reason, replayed), expected, "{status:?} {reason:?}");
        }
    }

    #[test]
    fn refresh_answers_are_classified_by_status_and_header() {
        let cases = [
            (None, None, Outcome::NoAnswer),
            (Some(200), Some("rotated"), Outcome::Rotated),
            (Some(200), Some("repeated"), Outcome::Repeated),
            (Some(200), None, Outcome::Refused),
            (Some(400), None, Outcome::Refused),
            (Some(500), None, Outcome::ServerError),
        ];
        for (status, header, expected) in cases {
            assert_eq!(refresh_outcome(status, header), expected, "{status:?} {header:?}");
        }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let cases: [(&[f64], f64, Option<f64>); 5] = [
            (&[], 50.0, None),
            (&[7.0], 99.0, Some(7.0)),
            (&hundred, 50.0, Some(50.0)),
            (&hundred, 99.0, Some(99.0)),
            (&[3.0, 1.0, 2.0], 50.0, Some(2.0)),
        ];
        for (values, p, expected) in cases {
            assert_eq!(percentile(values, p), expected, "p{p} of {values:?}");
        }
    }

    fn shot(instance: &str, outcome: Outcome, names: Option<&str>) -> Shot {
        Shot {
            instance: instance.to_owned(),
            outcome,
            millis: 1.0,
            names: names.map(str::to_owned),
            detail: Some("409 duplicate_submit".to_owned()),
        }
    }

    #[test]
    fn the_table_has_a_row_per_instance_and_a_total() {
        let shots = [
            shot("B", Outcome::Duplicate, Some("7")),
            shot("A", Outcome::Created, Some("7")),
            shot("A", Outcome::Duplicate, Some("7")),
        ];
        let (rows, total) = tally(&shots);
        let names: Vec<&str> = rows.iter().map(|r| r.instance.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!((rows[0].count(Outcome::Created), rows[0].count(Outcome::Duplicate)), (1, 1));
        assert_eq!((rows[1].count(Outcome::Created), rows[1].count(Outcome::Duplicate)), (0, 1));
        assert_eq!((total.count(Outcome::Created), total.count(Outcome::Duplicate)), (1, 2));
    }

    #[test]
    fn verdicts_hold_only_when_every_answer_and_the_orders_list_agree() {
        use Outcome::*;
        let one_order = vec![shot("A", Created, Some("7")), shot("B", Duplicate, Some("7"))];
        let two_orders = vec![shot("A", Created, Some("7")), shot("B", Created, Some("8"))];
        let a_fault = vec![shot("A", Created, Some("7")), shot("B", ServerError, None)];
        let elsewhere = vec![shot("A", Created, Some("7")), shot("B", Duplicate, Some("6"))];
        let keyed = vec![
            shot("A", Created, Some("7")),
            shot("B", Replayed, Some("7")),
            shot("B", InUse, None),
        ];
        let one_rotation = vec![shot("A", Rotated, Some("c")), shot("B", Repeated, Some("c"))];
        let two_children = vec![shot("A", Rotated, Some("c")), shot("B", Repeated, Some("d"))];
        let theft = vec![shot("A", Rotated, Some("c")), shot("B", Refused, None)];
        let cases = [
            (RaceKind::FormToken, &one_order, Some(1), true),
            (RaceKind::FormToken, &one_order, Some(2), false),
            (RaceKind::FormToken, &one_order, None, false),
            (RaceKind::FormToken, &two_orders, Some(2), false),
            (RaceKind::FormToken, &a_fault, Some(1), false),
            (RaceKind::FormToken, &elsewhere, Some(1), false),
            (RaceKind::IdempotencyKey, &keyed, Some(1), true),
            (RaceKind::Refresh, &one_rotation, None, true),
            (RaceKind::Refresh, &two_children, None, false),
            (RaceKind::Refresh, &theft, None, false),
        ];
        for (kind, shots, new_orders, held) in cases {
            let verdict = verdict(kind, shots, new_orders);
            assert_eq!(verdict.held, held, "{kind:?} {shots:?} {new_orders:?}: {verdict:?}");
            assert!(verdict.summary.starts_with(if held { "Held." } else { "Broken:" }));
        }
    }
}
