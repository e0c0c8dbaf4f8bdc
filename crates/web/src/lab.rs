//! What the walkthrough and the attack lab are made of: steps that call the public API, check what
//! came back against what the lesson expects, and say so in one line.
//!
//! A step never decides anything the server did not say: it reads statuses, reasons and headers
//! from real responses (which the timeline also records), and fails loudly when they differ from
//! the lesson's expectation.

use std::future::Future;
use std::pin::Pin;

use leptos::prelude::*;
use leptos::reactive::owner::Owner;
use leptos::task::spawn_local_scoped_with_cancellation;
use serde_json::{Value, json};
use tokenlab_core::Reason;

use crate::client::{ApiClient, ApiResponse, Method};
use crate::components::DelayReport;
use crate::server_clock::ServerClock;

/// What a step found: `Ok` says what happened as the lesson expected, `Err` what happened instead.
pub type StepResult = Result<String, String>;
pub type StepFuture = Pin<Box<dyn Future<Output = StepResult>>>;
pub type StepFn = fn(Lab) -> StepFuture;

/// The demo account every fresh lab has.
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "wonderland-demo";

/// Values a chapter carries from one step to the next, as a client app would keep them.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub device_id: String,
    pub device_token: String,
    pub access_token: String,
    pub refresh_token: String,
    /// A refresh token that was already exchanged: what a thief's copy looks like later.
    pub spent_refresh_token: String,
    pub form_token: String,
    pub orders_before: usize,
    /// `expires_in` and `refresh_expires_in` of the last login: how far to move the clock to pass
    /// each, under whichever preset issued them.
    pub access_lifetime_seconds: i64,
    pub refresh_lifetime_seconds: i64,
}

/// One scheme's line in the comparator: the same moment, three ways of being recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    /// Which run of the comparator produced the row, so a new run replaces every row.
    pub run: u32,
    pub scheme: &'static str,
    pub sent: String,
    pub queries: String,
    pub outcome: String,
    pub reason: Option<Reason>,
}

#[derive(Clone, Copy)]
pub struct Lab {
    pub client: ApiClient,
    pub clock: ServerClock,
    pub memory: StoredValue<Memory>,
    pub comparison: RwSignal<Vec<ComparisonRow>>,
    /// The last revocation-delay measurement (chapter 6), filled in while it runs.
    pub revocation: RwSignal<Option<DelayReport>>,
    /// Where the attack lab shows a page of another site (the cross-site attack).
    pub attacker_frame: AttackerFrame,
    /// Set while any step, chapter, attack or reset runs: they share the memory above and the
    /// server's demo state, so one runs at a time.
    pub busy: RwSignal<bool>,
    owner: StoredValue<Option<Owner>>,
}

impl Lab {
    /// A lab on the page's API client and server clock (both provided by `App`).
    pub fn from_context() -> Self {
        Self {
            client: expect_context::<ApiClient>(),
            clock: expect_context::<ServerClock>(),
            memory: StoredValue::new(Memory::default()),
            comparison: RwSignal::new(Vec::new()),
            revocation: RwSignal::new(None),
            attacker_frame: AttackerFrame::new(),
            busy: RwSignal::new(false),
            owner: StoredValue::new(Owner::current()),
        }
    }

    /// Runs `work` unless something else is running (then the click is ignored; the buttons are
    /// disabled meanwhile anyway), marking the lab busy while it runs. The task lives
    /// under the page that made the lab: leaving the page cancels it, so a step in flight never
    /// touches the page's disposed state.
    pub fn run(&self, work: impl Future<Output = ()> + 'static) {
        if self.busy.get_untracked() {
            return;
        }
        self.busy.set(true);
        let busy = self.busy;
        spawn_owned(self.owner, async move {
            work.await;
            busy.set(false);
        });
    }

    pub fn remember(&self, change: impl FnOnce(&mut Memory)) {
        self.memory.update_value(change);
    }

    pub fn recall<T>(&self, read: impl FnOnce(&Memory) -> T) -> T {
        self.memory.with_value(read)
    }

    /// Wipes the server's demo data and clock, and this lab's memory: a clean start.
    pub async fn reset(&self) -> StepResult {
        let response = self.client.post("/api/demo/reset", json!({})).await?;
        expect_status(&response, 200)?;
        self.memory.set_value(Memory::default());
        self.comparison.set(Vec::new());
        self.revocation.set(None);
        self.clock.refresh();
        Ok("demo data wiped, clock back to real time".to_owned())
    }

    /// A clean start that keeps the token-policy preset the learner chose, so one scenario can be
    /// run under each preset.
    pub async fn reset_keeping_preset(&self) -> StepResult {
        let (preset, _, _) = self.policy().await?;
        self.reset().await?;
        let restored = self
            .client
            .call(Method::Put, "/api/demo/policy", Some(json!({ "name": preset })), &[])
            .await?;
        expect_status(&restored, 200)?;
        Ok(format!("demo data wiped, clock back to real time, preset {preset} kept"))
    }

    pub async fn advance_clock(&self, seconds: i64) -> Result<ApiResponse, String> {
        let response =
            self.client.post("/api/demo/clock", json!({ "advance_seconds": seconds })).await?;
        expect_status(&response, 200)?;
        self.clock.observe(&response);
        Ok(response)
    }

    pub async fn session_login(&self) -> Result<ApiResponse, String> {
        self.client
            .post("/api/session/login", json!({ "username": USERNAME, "password": PASSWORD }))
            .await
    }

    pub async fn device_login(&self, device_id: &str, mode: &str) -> Result<ApiResponse, String> {
        let response = self
            .client
            .post(
                "/api/device/login",
                json!({ "username": USERNAME, "password": PASSWORD, "device_id": device_id, "mode": mode }),
            )
            .await?;
        expect_status(&response, 200)?;
        let token = string_field(&response.body, "device_token")?;
        self.remember(|m| {
            m.device_id = device_id.to_owned();
            m.device_token = token;
        });
        Ok(response)
    }

    /// `GET /api/device/me` with the remembered device id and token.
    pub async fn device_me(&self) -> Result<ApiResponse, String> {
        let (id, token) = self.recall(|m| (m.device_id.clone(), m.device_token.clone()));
        self.client
            .call(
                Method::Get,
                "/api/device/me",
                None,
                &[("x-device-id", id), ("x-device-token", token)],
            )
            .await
    }

    /// The password grant (JSON, as the token endpoint also accepts); remembers both tokens.
    pub async fn password_grant(&self) -> Result<ApiResponse, String> {
        let response = self
            .client
            .post(
                "/api/oauth/token",
                json!({ "grant_type": "password", "username": USERNAME, "password": PASSWORD }),
            )
            .await?;
        expect_status(&response, 200)?;
        self.keep_tokens(&response)?;
        let lifetime = |key: &str| response.body.get(key).and_then(Value::as_i64).unwrap_or(0);
        let (access, refresh) = (lifetime("expires_in"), lifetime("refresh_expires_in"));
        self.remember(|m| {
            m.access_lifetime_seconds = access;
            m.refresh_lifetime_seconds = refresh;
        });
        Ok(response)
    }

    pub async fn refresh_with(&self, refresh_token: &str) -> Result<ApiResponse, String> {
        self.client
            .post(
                "/api/oauth/token",
                json!({ "grant_type": "refresh_token", "refresh_token": refresh_token }),
            )
            .await
    }

    /// The client's duty after a refresh (C9): replace both stored tokens with the new ones.
    pub fn keep_tokens(&self, response: &ApiResponse) -> Result<(), String> {
        let access = string_field(&response.body, "access_token")?;
        let refresh = string_field(&response.body, "refresh_token")?;
        self.remember(|m| {
            m.spent_refresh_token = std::mem::replace(&mut m.refresh_token, refresh);
            m.access_token = access;
        });
        Ok(())
    }

    /// `GET /api/device/me` from the attacker's client, which knows only a device id and sends it
    /// as the token too: all it takes under the article's scheme.
    pub async fn device_me_as_attacker(&self, device_id: &str) -> Result<ApiResponse, String> {
        self.client
            .call_as_attacker(
                Method::Get,
                "/api/device/me",
                None,
                &[("x-device-id", device_id.to_owned()), ("x-device-token", device_id.to_owned())],
            )
            .await
    }

    /// A refresh with a copied refresh token, from the attacker's client.
    pub async fn refresh_as_attacker(&self, stolen: &str) -> Result<ApiResponse, String> {
        self.client
            .call_as_attacker(
                Method::Post,
                "/api/oauth/token",
                Some(json!({ "grant_type": "refresh_token", "refresh_token": stolen })),
                &[],
            )
            .await
    }

    /// An order sent over a slow network: the server holds it 1.5 s before processing.
    async fn order_slowly(&self, item: &str, form_token: String) -> Result<ApiResponse, String> {
        self.client
            .call(
                Method::Post,
                "/api/orders",
                Some(json!({ "item": item, "quantity": 1, "form_token": form_token })),
                &[("x-demo-delay-ms", "1500".to_owned())],
            )
            .await
    }

    /// A double click on a slow network: two submissions with one form token, in flight at once.
    /// Returns `(created, duplicate)` once one is 201 and the other `duplicate_submit`.
    pub async fn submit_twice_slowly(
        &self,
        item: &str,
        form_token: String,
    ) -> Result<(ApiResponse, ApiResponse), String> {
        let (first, second) = futures::join!(
            self.order_slowly(item, form_token.clone()),
            self.order_slowly(item, form_token)
        );
        let (first, second) = (first?, second?);
        let (created, duplicate) = match (first.status, second.status) {
            (201, 409) => (first, second),
            (409, 201) => (second, first),
            _ => {
                return Err(format!(
                    "expected one 201 and one 409, got {} and {}",
                    describe(&first),
                    describe(&second)
                ));
            }
        };
        expect_reason(&duplicate, Reason::DuplicateSubmit)?;
        Ok((created, duplicate))
    }

    pub async fn jwt_me(&self, access_token: &str) -> Result<ApiResponse, String> {
        self.client
            .call(
                Method::Get,
                "/api/jwt/me",
                None,
                &[("authorization", format!("Bearer {access_token}"))],
            )
            .await
    }

    /// The token-policy preset in force: `(name, access seconds, refresh absolute seconds)`.
    pub async fn policy(&self) -> Result<(String, i64, i64), String> {
        let response = self.client.get("/api/demo/policy").await?;
        expect_status(&response, 200)?;
        let current = &response.body["current"];
        Ok((
            string_field(current, "name")?,
            current["access_lifetime_seconds"].as_i64().ok_or("no access lifetime")?,
            current["refresh_absolute_seconds"].as_i64().ok_or("no refresh lifetime")?,
        ))
    }

    pub async fn order_count(&self) -> Result<usize, String> {
        let response = self.client.get("/api/orders").await?;
        expect_status(&response, 200)?;
        response
            .body
            .get("orders")
            .and_then(Value::as_array)
            .map(Vec::len)
            .ok_or_else(|| "no order list in the answer".to_owned())
    }
}

/// The calling component's reactive owner, for [`spawn_owned`].
pub fn current_owner() -> StoredValue<Option<Owner>> {
    StoredValue::new(Owner::current())
}

/// Runs `task` under `owner`, cancelled when that component is disposed (the learner navigated
/// away): an API answer arriving later must not reach signals that no longer exist.
pub fn spawn_owned(owner: StoredValue<Option<Owner>>, task: impl Future<Output = ()> + 'static) {
    match owner.get_value() {
        Some(owner) => owner.with(|| spawn_local_scoped_with_cancellation(task)),
        None => leptos::task::spawn_local(task),
    }
}

/// `200` or `401 not_logged_in`: how a response reads in one line.
pub fn describe(response: &ApiResponse) -> String {
    match response.body.get("reason").and_then(Value::as_str) {
        Some(reason) => format!("{} {reason}", response.status),
        None => response.status.to_string(),
    }
}

pub fn expect_status(response: &ApiResponse, status: u16) -> Result<(), String> {
    if response.status == status {
        Ok(())
    } else {
        Err(format!("expected {status}, got {}", describe(response)))
    }
}

pub fn expect_reason(response: &ApiResponse, reason: Reason) -> Result<(), String> {
    if response.reason() == Some(reason) && response.status == reason.status() {
        Ok(())
    } else {
        Err(format!("expected {} {}, got {}", reason.status(), reason.code(), describe(response)))
    }
}

/// The `X-Tokenlab-Db-Queries` count: statements the request ran (C3).
pub fn queries(response: &ApiResponse) -> String {
    response.header("x-tokenlab-db-queries").unwrap_or("?").to_owned()
}

/// The same count in words: "1 statement", "3 statements".
pub fn statements(response: &ApiResponse) -> String {
    match response.header("x-tokenlab-db-queries").and_then(|n| n.parse::<i64>().ok()) {
        Some(n) => plural(n, "statement", "statements"),
        None => "statements not counted".to_owned(),
    }
}

/// "1 order", "0 orders", "2 refresh families": a count with its noun in the right number.
pub fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn string_field(body: &Value, key: &str) -> Result<String, String> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the answer has no {key}"))
}

/// The frame the cross-site attacker's page runs in, and a way to learn that the server answered.
#[derive(Clone, Copy)]
pub struct AttackerFrame {
    pub srcdoc: RwSignal<Option<String>>,
    loads: StoredValue<u32>,
    runs: StoredValue<u32>,
    answered: StoredValue<Option<futures::channel::oneshot::Sender<()>>>,
}

impl AttackerFrame {
    fn new() -> Self {
        Self {
            srcdoc: RwSignal::new(None),
            loads: StoredValue::new(0),
            runs: StoredValue::new(0),
            answered: StoredValue::new(None),
        }
    }

    /// Shows the attacker's page; completes when the frame has loaded the server's answer.
    pub fn open(&self, page: String) -> futures::channel::oneshot::Receiver<()> {
        let (done, answered) = futures::channel::oneshot::channel();
        self.loads.set_value(0);
        self.answered.set_value(Some(done));
        // Each run's page differs, so the frame loads it again: an unchanged `srcdoc` would not
        // be written to the DOM, and the frame would never fire `load`.
        self.runs.update_value(|n| *n += 1);
        self.srcdoc.set(Some(format!("{page}<!-- run {} -->", self.runs.get_value())));
        answered
    }

    /// The frame fires `load` twice: for the attacker's page, then for the server's answer to the
    /// form it submits from its own `onload`.
    pub fn loaded(&self) {
        self.loads.update_value(|n| *n += 1);
        if self.loads.get_value() == 2
            && let Some(done) = self.answered.try_update_value(Option::take).flatten()
        {
            let _ = done.send(());
        }
    }
}

/// How a step's last run went, for display.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    NotRun,
    Running,
    Passed(String),
    Failed(String),
}

/// A step's future, boxed so that steps can sit in tables of plain `fn`s.
pub fn boxed(future: impl Future<Output = StepResult> + 'static) -> StepFuture {
    Box::pin(future)
}

impl StepState {
    /// `✓ what happened`, `✗ what happened instead`, `…` while running.
    pub fn text(&self) -> String {
        match self {
            StepState::NotRun => String::new(),
            StepState::Running => "…".to_owned(),
            StepState::Passed(summary) => format!("✓ {summary}"),
            StepState::Failed(problem) => format!("✗ {problem}"),
        }
    }

    pub fn from_result(result: StepResult) -> Self {
        match result {
            Ok(summary) => StepState::Passed(summary),
            Err(problem) => StepState::Failed(problem),
        }
    }

    pub fn css(&self) -> &'static str {
        match self {
            StepState::NotRun => "not-run",
            StepState::Running => "running",
            StepState::Passed(_) => "passed",
            StepState::Failed(_) => "failed",
        }
    }
}

/// How a refusal's reason is explained everywhere in the lab: its code, what it means, and the
/// rule it enforces, all from the one table in `tokenlab_core::reason`.
#[component]
pub fn ReasonRule(reason: Reason) -> impl IntoView {
    view! {
        <div class="reason-rule" data-reason=reason.code()>
            <code class="reason">{reason.code()}</code>
            " (" {reason.status()} ") — " {reason.explanation()}
            <div class="rule">"Rule: " {reason.rule()}</div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_right_number() {
        let cases = [(0, "0 orders"), (1, "1 order"), (2, "2 orders"), (-1, "-1 orders")];
        for (n, expected) in cases {
            assert_eq!(plural(n, "order", "orders"), expected, "{n}");
        }
    }

    #[test]
    fn statement_counts_read_as_words() {
        let answer = |count: Option<&str>| ApiResponse {
            status: 200,
            body: Value::Null,
            headers: count
                .map(|c| vec![("x-tokenlab-db-queries".to_owned(), c.to_owned())])
                .unwrap_or_default(),
        };
        let cases = [
            (Some("1"), "1 statement"),
            (Some("3"), "3 statements"),
            (Some("0"), "0 statements"),
            (None, "statements not counted"),
            (Some("many"), "statements not counted"),
        ];
        for (count, expected) in cases {
            assert_eq!(statements(&answer(count)), expected, "{count:?}");
        }
    }
}
