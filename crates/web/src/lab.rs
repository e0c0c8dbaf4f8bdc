//! What the walkthrough and the attack lab are made of: steps that call the public API, check what
//! came back against what the lesson expects, and say so in one line.
//!
//! A step never decides anything the server did not say: it reads statuses, reasons and headers
//! from real responses (which the timeline also records), bodies as the wire types the server
//! sends, and fails loudly when they differ from the lesson's expectation.

use std::future::Future;
use std::pin::Pin;

use leptos::prelude::*;
use leptos::reactive::owner::Owner;
use leptos::task::spawn_local_scoped_with_cancellation;
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::wire::{
    BearerMe, ChoosePolicy, ClockChange, CreatedOrder, DeviceLoginResponse, DeviceMe, NewOrder,
    PolicyPreset, SessionView, TokenResponse,
};

use crate::api::{
    self, Answer, ApiFailure, ApiResult, Credential, DeviceCredentials, Network, RefreshFrom,
    RefreshIn,
};
use crate::client::{ApiClient, ApiResponse};
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
        expect_status(&api::reset_demo(&self.client).await, 200)?;
        self.memory.set_value(Memory::default());
        self.comparison.set(Vec::new());
        self.revocation.set(None);
        self.clock.refresh();
        Ok("demo data wiped, clock back to real time".to_owned())
    }

    /// A clean start that keeps the token-policy preset the learner chose, so one scenario can be
    /// run under each preset.
    pub async fn reset_keeping_preset(&self) -> StepResult {
        let preset = self.policy().await?.name;
        self.reset().await?;
        let choice = ChoosePolicy { name: preset.clone() };
        expect_status(&api::choose_policy(&self.client, &choice).await, 200)?;
        Ok(format!("demo data wiped, clock back to real time, preset {preset} kept"))
    }

    /// Moves the server's clock forward, and the page's display of it.
    pub async fn advance_clock(&self, seconds: i64) -> Result<(), String> {
        let change = ClockChange { advance_seconds: Some(seconds), reset: None };
        let moved = api::change_clock(&self.client, &change).await;
        self.clock.observe(expect_status(&moved, 200)?);
        Ok(())
    }

    pub async fn session_login(&self) -> ApiResult<SessionView> {
        api::session_login(&self.client, USERNAME, PASSWORD).await
    }

    /// A device login that must succeed; remembers the device id and its token.
    pub async fn device_login(
        &self,
        device_id: &str,
        mode: DeviceMode,
    ) -> Result<Answer<DeviceLoginResponse>, String> {
        let result = api::device_login(&self.client, USERNAME, PASSWORD, device_id, mode).await;
        let login = expect_status(&result, 200)?;
        // The lab logs in as written or hardened, which always answer with a token.
        let token = login.device_token.clone().unwrap_or_default();
        self.remember(|m| {
            m.device_id = device_id.to_owned();
            m.device_token = token;
        });
        result.map_err(|failure| failure.to_string())
    }

    /// The remembered device id and token.
    pub fn device(&self) -> DeviceCredentials {
        self.recall(|m| DeviceCredentials {
            id: m.device_id.clone(),
            token: m.device_token.clone(),
            key: None,
        })
    }

    /// `GET /api/device/me` with the remembered device id and token.
    pub async fn device_me(&self) -> ApiResult<DeviceMe> {
        api::device_me(&self.client, &self.device()).await
    }

    /// The password grant, with the refresh token in the body as a native client gets it; must
    /// succeed, and remembers both tokens and their lifetimes.
    pub async fn password_grant(&self) -> Result<Answer<TokenResponse>, String> {
        let result = api::password_grant(&self.client, USERNAME, PASSWORD, RefreshIn::Body).await;
        let tokens = expect_status(&result, 200)?;
        self.keep_tokens(tokens)?;
        let (access, refresh) = (tokens.expires_in, tokens.refresh_expires_in);
        self.remember(|m| {
            m.access_lifetime_seconds = access;
            m.refresh_lifetime_seconds = refresh;
        });
        result.map_err(|failure| failure.to_string())
    }

    pub async fn refresh_with(&self, refresh_token: &str) -> ApiResult<TokenResponse> {
        api::refresh(&self.client, RefreshFrom::Token(refresh_token)).await
    }

    /// The client's duty after a refresh (C9): replace both stored tokens with the new ones.
    pub fn keep_tokens(&self, tokens: &TokenResponse) -> Result<(), String> {
        let access = tokens.access_token.clone();
        let refresh = tokens
            .refresh_token
            .clone()
            .ok_or_else(|| "the answer has no refresh_token".to_owned())?;
        self.remember(|m| {
            m.spent_refresh_token = std::mem::replace(&mut m.refresh_token, refresh);
            m.access_token = access;
        });
        Ok(())
    }

    /// `GET /api/device/me` from the attacker's client, which knows only a device id and sends it
    /// as the token too: all it takes under the article's scheme.
    pub async fn device_me_as_attacker(&self, device_id: &str) -> ApiResult<DeviceMe> {
        let guess =
            DeviceCredentials { id: device_id.to_owned(), token: device_id.to_owned(), key: None };
        api::device_me(&self.client.as_attacker(), &guess).await
    }

    /// A refresh with a copied refresh token, from the attacker's client.
    pub async fn refresh_as_attacker(&self, stolen: &str) -> ApiResult<TokenResponse> {
        api::refresh(&self.client.as_attacker(), RefreshFrom::Token(stolen)).await
    }

    /// An order sent over a slow network: the server holds it 1.5 s before processing.
    async fn order_slowly(&self, item: &str, form_token: String) -> ApiResult<CreatedOrder> {
        let order = NewOrder { item: item.to_owned(), quantity: 1, form_token: Some(form_token) };
        let slow = Network { server_delay_ms: Some(1500), client_timeout: None };
        api::place_order(&self.client, &Credential::Cookies, &order, None, slow).await
    }

    /// A double click on a slow network: two submissions with one form token, in flight at once.
    /// Returns `(created, duplicate)` once one is 201 and the other `duplicate_submit`.
    pub async fn submit_twice_slowly(
        &self,
        item: &str,
        form_token: String,
    ) -> Result<(Answer<CreatedOrder>, ApiFailure), String> {
        let (first, second) = futures::join!(
            self.order_slowly(item, form_token.clone()),
            self.order_slowly(item, form_token)
        );
        let (created, duplicate) = match (first, second) {
            (Ok(created), Err(duplicate)) | (Err(duplicate), Ok(created))
                if created.status() == 201 && duplicate.status() == Some(409) =>
            {
                (created, duplicate)
            }
            (first, second) => {
                return Err(format!(
                    "expected one 201 and one 409, got {} and {}",
                    describe(&first),
                    describe(&second)
                ));
            }
        };
        let expected = Reason::DuplicateSubmit;
        if duplicate.reason() != Some(expected) {
            return Err(format!("expected 409 {expected}, got {duplicate}"));
        }
        Ok((created, duplicate))
    }

    pub async fn jwt_me(&self, access_token: &str) -> ApiResult<BearerMe> {
        api::jwt_me(&self.client, access_token).await
    }

    /// The token-policy preset in force.
    pub async fn policy(&self) -> Result<PolicyPreset, String> {
        let choice = api::policy(&self.client).await;
        Ok(expect_status(&choice, 200)?.current.clone())
    }

    pub async fn order_count(&self) -> Result<usize, String> {
        let list = api::orders(&self.client, &Credential::Cookies).await;
        Ok(expect_status(&list, 200)?.orders.len())
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

/// `200` or `401 not_logged_in`: how an answer reads in one line.
pub fn describe<T>(result: &ApiResult<T>) -> String {
    match result {
        Ok(answer) => answer.status().to_string(),
        Err(failure) => failure.to_string(),
    }
}

/// The answer, when the server gave one with `status`; otherwise what it gave instead.
pub fn expect_status<T>(result: &ApiResult<T>, status: u16) -> Result<&Answer<T>, String> {
    match result {
        Ok(answer) if answer.status() == status => Ok(answer),
        _ => Err(format!("expected {status}, got {}", describe(result))),
    }
}

/// The refusal, when the server refused with `reason` (and its status); otherwise what it did.
pub fn expect_reason<T>(result: &ApiResult<T>, reason: Reason) -> Result<&ApiFailure, String> {
    match result {
        Err(failure)
            if failure.reason() == Some(reason) && failure.status() == Some(reason.status()) =>
        {
            Ok(failure)
        }
        _ => {
            Err(format!("expected {} {}, got {}", reason.status(), reason.code(), describe(result)))
        }
    }
}

/// The call must have had an answer, whatever it was: no answer ends the step, as it would any
/// client.
pub fn answered<T>(result: ApiResult<T>) -> Result<ApiResult<T>, String> {
    match result {
        Err(ApiFailure::NoAnswer(problem)) => Err(problem),
        answered => Ok(answered),
    }
}

/// The refusal's reason, if the call was refused.
pub fn reason_of<T>(result: &ApiResult<T>) -> Option<Reason> {
    result.as_ref().err().and_then(ApiFailure::reason)
}

/// The `X-Tokenlab-Db-Queries` count: statements the request ran (C3), refused or not.
pub fn queries<T>(result: &ApiResult<T>) -> String {
    api::raw(result)
        .and_then(|response| response.header("x-tokenlab-db-queries"))
        .unwrap_or("?")
        .to_owned()
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

/// The one script of the cross-site attacker's page: once the page has loaded, it submits the
/// page's form. The page runs in the attack lab's sandboxed `srcdoc` frame, which inherits the lab
/// page's Content-Security-Policy, so the server lists this script's hash among the scripts every
/// page may run (`crates/server/src/csp.rs`). That gives an injected copy nothing: in one of the
/// lab's own documents it does nothing (their origin is not the opaque `null` of a sandboxed
/// frame), and whatever a sandboxed frame posts reaches the server with `Origin: null`, which it
/// refuses as cross-site.
pub const ATTACKER_SCRIPT: &str =
    r#"if (self.origin === "null") addEventListener("load", () => document.forms[0].submit());"#;

/// The cross-site attacker's page: a form that submits itself to this server as soon as it loads.
/// No event-handler attribute and no `style`, which the policy would refuse: its only script is
/// [`ATTACKER_SCRIPT`].
pub fn attacker_page(origin: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><body>
<p>evil.example — "You won a prize!"</p>
<form method="post" action="{origin}/api/orders">
<input type="hidden" name="item" value="prize"><input type="hidden" name="quantity" value="100">
</form><script>{ATTACKER_SCRIPT}</script></body></html>"#
    )
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
    fn the_attacker_page_runs_no_script_but_the_one_the_policy_lists() {
        let page = attacker_page("http://127.0.0.1:3000");
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert!(page.contains(&format!("<script>{ATTACKER_SCRIPT}</script>")), "{page}");
        // Inline handlers and style attributes would need 'unsafe-inline' or 'unsafe-hashes'.
        assert!(!page.contains(" on") && !page.contains("style"), "{page}");
        assert!(page.contains(r#"action="http://127.0.0.1:3000/api/orders""#), "{page}");
    }

    #[test]
    fn statement_counts_read_as_words() {
        let answer = |count: Option<&str>| ApiResponse {
            status: 200,
            body: serde_json::Value::Null,
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
