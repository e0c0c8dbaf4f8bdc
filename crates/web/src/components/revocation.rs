//! The revocation delay of each scheme, measured: sign a user in through every scheme, sign out
//! everywhere, then call through each scheme every 100 ms for 3 seconds and show how long each
//! credential kept working after the sign-out was answered.
//!
//! A server session or a device ends at once (the server deletes what it holds), and so does a
//! refresh token (its family is marked revoked). An access token is a signed statement the server
//! cannot recall: tokenlab refuses one of an ended login within a bound (1 s across instances), but
//! a JWT check without a revocation list — what most setups do, shown here by
//! `/api/demo/stateless-jwt` — accepts it until its `exp`. Every figure comes from the answers;
//! times are on the browser's monotonic clock, from the moment the sign-out's answer arrived.

use std::time::Duration;

use futures::future::join_all;
use leptos::prelude::*;
use time::OffsetDateTime;
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::wire::RevokeAll;

use crate::api::{
    self, Answer, ApiFailure, ApiResult, Credential, DeviceCredentials, RefreshFrom, RefreshIn,
};
use crate::client::{ApiClient, monotonic_ms, pause, random_key};
use crate::components::FailureView;
use crate::components::sessions::describe_ended;
use crate::lab::{
    PASSWORD, ReasonRule, StepResult, StepState, USERNAME, current_owner, spawn_owned,
};
use crate::logins::{PageLogins, notify};
use crate::server_clock::{format_lifetime, format_time};

/// How often each credential is tried after the sign-out, and for how long.
const POLL_EVERY_MS: f64 = 100.0;
const POLL_FOR_MS: f64 = 3000.0;
/// What the lesson promises for access tokens in tokenlab.
const ACCESS_BOUND_MS: f64 = 1000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Session,
    Device,
    Refresh,
    Access,
    Stateless,
}

impl Probe {
    pub const ALL: [Probe; 5] =
        [Probe::Session, Probe::Device, Probe::Refresh, Probe::Access, Probe::Stateless];

    pub fn key(self) -> &'static str {
        match self {
            Probe::Session => "session",
            Probe::Device => "device",
            Probe::Refresh => "refresh",
            Probe::Access => "access",
            Probe::Stateless => "stateless",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Probe::Session => "session id as token",
            Probe::Device => "device token (hardened)",
            Probe::Refresh => "refresh token",
            Probe::Access => "access token, checked by tokenlab",
            Probe::Stateless => "access token, signature and exp only",
        }
    }

    fn call(self) -> &'static str {
        match self {
            Probe::Session => "GET /api/session/me — cookie tl_session",
            Probe::Device => "GET /api/device/me — X-Device-Id, X-Device-Token",
            Probe::Refresh => "POST /api/oauth/token — grant_type=refresh_token",
            Probe::Access => "GET /api/jwt/me — Authorization: Bearer",
            Probe::Stateless => {
                "GET /api/demo/stateless-jwt — the same bearer, no revocation check"
            }
        }
    }

    /// What the lesson says about this scheme.
    fn promise(self) -> &'static str {
        match self {
            Probe::Session | Probe::Device | Probe::Refresh => "refused at the next request",
            Probe::Access => "refused within 1 s (tokenlab)",
            Probe::Stateless => "accepted until its exp (most JWT setups)",
        }
    }

    /// The refusal the lesson expects once the sign-out has reached this scheme.
    fn expected_reason(self) -> Option<Reason> {
        match self {
            Probe::Session => Some(Reason::NotLoggedIn),
            Probe::Device => Some(Reason::DeviceRevoked),
            Probe::Refresh => Some(Reason::RefreshRevoked),
            Probe::Access => Some(Reason::TokenRevoked),
            Probe::Stateless => None,
        }
    }
}

/// What one scheme's calls answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRow {
    pub probe: Probe,
    /// The answer before the sign-out, proving the credential worked.
    pub before: String,
    pub polls: u32,
    pub accepted: u32,
    /// When the last accepted call after the sign-out was sent, in ms after its answer.
    pub last_accepted_ms: Option<f64>,
    /// When the first refused call was sent.
    pub first_refused_ms: Option<f64>,
    pub refusal: Option<ApiFailure>,
}

impl ProbeRow {
    fn new(probe: Probe) -> Self {
        Self {
            probe,
            before: String::new(),
            polls: 0,
            accepted: 0,
            last_accepted_ms: None,
            first_refused_ms: None,
            refusal: None,
        }
    }

    fn refused(&self) -> bool {
        self.first_refused_ms.is_some()
    }

    /// How long it kept working after the sign-out was answered: until the last accepted call.
    fn kept_ms(&self) -> f64 {
        self.last_accepted_ms.unwrap_or(0.0)
    }

    fn reason(&self) -> Option<Reason> {
        self.refusal.as_ref().and_then(ApiFailure::reason)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    SigningIn,
    SigningOut,
    Polling,
    Done,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DelayReport {
    pub username: String,
    pub phase: Phase,
    /// A sign-in or the sign-out refused: why the measurement could not run.
    pub refusal: Option<ApiFailure>,
    /// What the sign-out said it ended.
    pub ended: Option<String>,
    /// The server's stated bound for access tokens (`access_token_bound_ms`).
    pub bound_ms: Option<i64>,
    pub rows: Vec<ProbeRow>,
    /// How long after the sign-out the last round of calls was sent.
    pub polled_ms: f64,
    /// The access token's `exp`, as the stateless check reported it.
    pub exp: Option<OffsetDateTime>,
    /// `expires_in` of the login, and the preset in force when it was issued.
    pub access_lifetime_seconds: Option<i64>,
    pub preset: Option<String>,
}

impl DelayReport {
    fn new(username: &str) -> Self {
        Self {
            username: username.to_owned(),
            phase: Phase::SigningIn,
            refusal: None,
            ended: None,
            bound_ms: None,
            rows: Probe::ALL.into_iter().map(ProbeRow::new).collect(),
            polled_ms: 0.0,
            exp: None,
            access_lifetime_seconds: None,
            preset: None,
        }
    }

    fn row(&self, probe: Probe) -> Option<&ProbeRow> {
        self.rows.iter().find(|r| r.probe == probe)
    }

    fn row_mut(&mut self, probe: Probe) -> Option<&mut ProbeRow> {
        self.rows.iter_mut().find(|r| r.probe == probe)
    }

    /// "until exp (2026-12-27 18:00:00 UTC, 30 days with the article preset)", from real answers.
    fn until_exp(&self) -> String {
        let Some(exp) = self.exp else { return "until its exp".to_owned() };
        let lifetime = self.access_lifetime_seconds.map(|s| match &self.preset {
            Some(preset) => format!(", {} with the {preset} preset", format_lifetime(s)),
            None => format!(", {} after login", format_lifetime(s)),
        });
        format!("until exp ({}{})", format_time(exp), lifetime.unwrap_or_default())
    }
}

/// What a row says about its scheme's delay, in one line.
fn delay_text(row: &ProbeRow, report: &DelayReport) -> String {
    let code = row.reason().map_or("refused", Reason::code);
    let bound = report.bound_ms.map_or_else(
        || format!("tokenlab's bound ≤ {ACCESS_BOUND_MS:.0} ms"),
        |ms| format!("tokenlab's bound ≤ {ms} ms"),
    );
    match (row.refused(), row.accepted) {
        (true, 0) if row.probe == Probe::Access => {
            format!("0 ms (next request refused: {code}; {bound})")
        }
        (true, 0) => format!("0 ms (next request refused: {code})"),
        (true, _) => format!(
            "refused after {:.0} ms (accepted until {:.0} ms, then {code}){}",
            row.first_refused_ms.unwrap_or_default(),
            row.kept_ms(),
            if row.probe == Probe::Access { format!("; {bound}") } else { String::new() }
        ),
        (false, 0) if report.phase != Phase::Done => "…".to_owned(),
        (false, _) if report.phase != Phase::Done => {
            format!("accepted so far ({:.0} ms)…", row.kept_ms())
        }
        (false, _) if row.probe == Probe::Stateless => {
            format!("still accepted after {:.1} s — {}", row.kept_ms() / 1000.0, report.until_exp())
        }
        (false, _) => format!("still accepted after {:.1} s", row.kept_ms() / 1000.0),
    }
}

/// Whether the measured delays are what the lesson says; the summary when they are.
pub fn lesson(report: &DelayReport) -> StepResult {
    if let Phase::Failed(problem) = &report.phase {
        return Err(problem.clone());
    }
    if report.phase != Phase::Done {
        return Err("the measurement did not finish".to_owned());
    }
    let row = |probe: Probe| report.row(probe).ok_or_else(|| format!("no {} row", probe.key()));
    let expect_refusal = |r: &ProbeRow| -> Result<(), String> {
        match (r.reason(), r.probe.expected_reason()) {
            (Some(got), Some(want)) if got == want => Ok(()),
            (got, want) => Err(format!(
                "{}: expected {}, got {}",
                r.probe.title(),
                want.map_or("?", Reason::code),
                got.map_or("no refusal", Reason::code)
            )),
        }
    };
    for probe in [Probe::Session, Probe::Device, Probe::Refresh] {
        let r = row(probe)?;
        expect_refusal(r)?;
        if r.accepted > 0 {
            return Err(format!(
                "{} kept working {:.0} ms after the sign-out; it should be refused at the next request",
                probe.title(),
                r.kept_ms()
            ));
        }
    }
    let access = row(Probe::Access)?;
    expect_refusal(access)?;
    if access.last_accepted_ms.is_some_and(|ms| ms >= ACCESS_BOUND_MS) {
        return Err(format!(
            "the access token was still accepted {:.0} ms after the sign-out (bound: {ACCESS_BOUND_MS:.0} ms)",
            access.kept_ms()
        ));
    }
    let stateless = row(Probe::Stateless)?;
    if stateless.refused() || stateless.last_accepted_ms.is_none_or(|ms| ms < POLL_FOR_MS) {
        return Err(format!(
            "the check without a revocation list should still accept the token after {:.0} s: {}",
            POLL_FOR_MS / 1000.0,
            delay_text(stateless, report)
        ));
    }
    Ok(format!(
        "session id, device token, refresh token: refused at the next request (0 ms); access token: {}; \
         without a revocation check: still accepted after {:.1} s, {}",
        if access.accepted == 0 {
            "refused at the next request too".to_owned()
        } else {
            format!("refused after {:.0} ms", access.first_refused_ms.unwrap_or_default())
        },
        stateless.kept_ms() / 1000.0,
        report.until_exp()
    ))
}

/// The credentials the measurement signed in with, as a client keeps them.
#[derive(Debug, Clone)]
struct Held {
    device_id: String,
    device_token: String,
    access: String,
    refresh: String,
}

/// A device id no one else uses, so that the measurement's device is its own.
fn throwaway_device_id() -> String {
    let key: String = random_key().chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    format!("revocation-probe-{key}")
}

/// What an accepted call hands back that the next call needs: a rotated refresh token, and the
/// stateless check's `exp`. (A rotated device secret comes in a header.)
#[derive(Debug, Clone, Default)]
struct Carried {
    refresh_token: Option<String>,
    exp: Option<i64>,
}

/// An accepted answer that hands nothing back.
fn nothing<T>(answer: Answer<T>) -> Answer<Carried> {
    answer.map(|_| Carried::default())
}

/// One call of one scheme with what is held; `(probe, sent at, answer)`.
async fn probe_once(
    client: ApiClient,
    probe: Probe,
    held: Held,
    t0: f64,
) -> (Probe, f64, ApiResult<Carried>) {
    let sent = monotonic_ms() - t0;
    let answer = match probe {
        Probe::Session => api::session_me(&client).await.map(nothing),
        Probe::Device => {
            let device =
                DeviceCredentials { id: held.device_id, token: held.device_token, key: None };
            api::device_me(&client, &device).await.map(nothing)
        }
        Probe::Refresh => {
            api::refresh(&client, RefreshFrom::Token(&held.refresh)).await.map(|answer| {
                answer.map(|tokens| Carried { refresh_token: tokens.refresh_token, exp: None })
            })
        }
        Probe::Access => api::jwt_me(&client, &held.access).await.map(nothing),
        Probe::Stateless => api::stateless_jwt(&client, &held.access).await.map(|answer| {
            answer.map(|verdict| Carried { refresh_token: None, exp: Some(verdict.exp) })
        }),
    };
    (probe, sent, answer)
}

/// Keeps what an accepted answer hands back: a rotated refresh token or device secret.
fn keep_rotated(held: &mut Held, probe: Probe, answer: &Answer<Carried>) {
    match probe {
        Probe::Refresh => {
            if let Some(refresh) = &answer.refresh_token {
                held.refresh = refresh.clone();
            }
        }
        Probe::Device => {
            if let Some(token) = answer.header("x-device-token") {
                held.device_token = token.to_owned();
            }
        }
        _ => {}
    }
}

fn exp_of(answer: &Answer<Carried>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(answer.exp?).ok()
}

/// Signs `username` in through every scheme, signs out everywhere, and polls; `report` follows
/// along so the table fills in while it runs.
pub async fn measure(
    client: ApiClient,
    username: String,
    password: String,
    report: RwSignal<Option<DelayReport>>,
) -> Result<DelayReport, String> {
    report.set(Some(DelayReport::new(&username)));
    let result = run(client, &username, &password, report).await;
    if let Err(problem) = &result {
        report.update(|r| {
            if let Some(r) = r {
                r.phase = Phase::Failed(problem.clone());
            }
        });
    }
    result
}

fn update(report: RwSignal<Option<DelayReport>>, change: impl FnOnce(&mut DelayReport)) {
    report.update(|r| {
        if let Some(r) = r {
            change(r);
        }
    });
}

/// A sign-in or the sign-out must succeed for the measurement to mean anything.
fn require_ok<T>(
    report: RwSignal<Option<DelayReport>>,
    what: &str,
    result: ApiResult<T>,
) -> Result<Answer<T>, String> {
    match result {
        Ok(answer) => Ok(answer),
        Err(ApiFailure::NoAnswer(problem)) => Err(problem),
        Err(failure) => {
            let problem = format!("{what}: {failure}");
            update(report, |r| r.refusal = Some(failure));
            Err(problem)
        }
    }
}

async fn run(
    client: ApiClient,
    username: &str,
    password: &str,
    report: RwSignal<Option<DelayReport>>,
) -> Result<DelayReport, String> {
    // Sign in through every scheme: a session cookie, a throwaway hardened device, and a password
    // grant without X-Refresh-Cookie, so the refresh token comes in the body and stays in memory.
    let session = api::session_login(&client, username, password).await;
    require_ok(report, "session login", session)?;
    let device_id = throwaway_device_id();
    let device =
        api::device_login(&client, username, password, &device_id, DeviceMode::Hardened).await;
    let device = require_ok(report, "device login", device)?.into_body();
    let tokens = api::password_grant(&client, username, password, RefreshIn::Body).await;
    let tokens = require_ok(report, "password grant", tokens)?.into_body();
    let mut held = Held {
        device_id,
        device_token: device.device_token.unwrap_or_default(),
        access: tokens.access_token,
        refresh: tokens
            .refresh_token
            .ok_or_else(|| "the answer has no refresh_token".to_owned())?,
    };
    let lifetime = Some(tokens.expires_in);
    // The preset that issued the token, where the server says (the demo profile).
    let preset = api::policy(&client).await.ok().map(|choice| choice.into_body().current.name);
    update(report, |r| {
        r.access_lifetime_seconds = lifetime;
        r.preset = preset;
    });

    // Each credential works before the sign-out: otherwise there is no delay to measure.
    for probe in Probe::ALL {
        let (_, _, answer) = probe_once(client, probe, held.clone(), 0.0).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(ApiFailure::NoAnswer(problem)) => return Err(problem),
            Err(failure) => {
                let problem = format!(
                    "before the sign-out, the {} was already refused: {failure}",
                    probe.title()
                );
                update(report, |r| r.refusal = Some(failure));
                return Err(problem);
            }
        };
        keep_rotated(&mut held, probe, &answer);
        let exp = exp_of(&answer);
        update(report, |r| {
            if probe == Probe::Stateless {
                r.exp = exp;
            }
            if let Some(row) = r.row_mut(probe) {
                row.before = answer.status().to_string();
            }
        });
    }

    // Sign out everywhere, as the access token's bearer, ending the caller's own sign-in too.
    update(report, |r| r.phase = Phase::SigningOut);
    let signed_out = api::revoke_all(
        &client,
        &Credential::Bearer(held.access.clone()),
        &RevokeAll { keep_current: false },
    )
    .await;
    let t0 = monotonic_ms();
    let signed_out = require_ok(report, "sign out everywhere", signed_out)?;
    let ended = describe_ended(&signed_out.ended);
    let bound = Some(signed_out.access_token_bound_ms);
    update(report, |r| {
        r.phase = Phase::Polling;
        r.ended = Some(ended);
        r.bound_ms = bound;
    });

    // Every 100 ms, every scheme not refused yet, all at once; for 3 s.
    let mut round = 0_u32;
    loop {
        let due = f64::from(round) * POLL_EVERY_MS;
        if due > POLL_FOR_MS {
            break;
        }
        let wait = due - (monotonic_ms() - t0);
        if wait > 0.0 {
            pause(Duration::from_millis(wait.ceil() as u64)).await;
        }
        let still = report.with_untracked(|r| {
            r.as_ref().map_or_else(Vec::new, |r| {
                r.rows.iter().filter(|row| !row.refused()).map(|row| row.probe).collect::<Vec<_>>()
            })
        });
        if still.is_empty() {
            break;
        }
        let answers =
            join_all(still.into_iter().map(|probe| probe_once(client, probe, held.clone(), t0)))
                .await;
        let mut last_sent = 0.0_f64;
        for (probe, sent, answer) in answers {
            if let Err(ApiFailure::NoAnswer(e)) = &answer {
                return Err(format!("{}: no answer: {e}", probe.title()));
            }
            last_sent = last_sent.max(sent);
            if let Ok(accepted) = &answer {
                keep_rotated(&mut held, probe, accepted);
            }
            let exp = answer.as_ref().ok().and_then(exp_of);
            update(report, |r| {
                if probe == Probe::Stateless && exp.is_some() {
                    r.exp = exp;
                }
                if let Some(row) = r.row_mut(probe) {
                    row.polls += 1;
                    match answer {
                        Ok(_) => {
                            row.accepted += 1;
                            row.last_accepted_ms = Some(sent);
                        }
                        Err(failure) => {
                            row.first_refused_ms = Some(sent);
                            row.refusal = Some(failure);
                        }
                    }
                }
            });
        }
        update(report, |r| r.polled_ms = r.polled_ms.max(last_sent));
        round += 1;
    }
    update(report, |r| r.phase = Phase::Done);
    report.get_untracked().ok_or_else(|| "the report is gone".to_owned())
}

/// The measured delays, one row per scheme.
#[component]
pub fn DelayTable(report: RwSignal<Option<DelayReport>>) -> impl IntoView {
    view! {
        {move || report.get().map(|current| {
            let status = match &current.phase {
                Phase::SigningIn => format!("signing {} in through every scheme…", current.username),
                Phase::SigningOut => "signing out everywhere…".to_owned(),
                Phase::Polling => format!("calling every 100 ms… {:.1} s", current.polled_ms / 1000.0),
                Phase::Done => format!("done: {:.1} s of calls after the sign-out", current.polled_ms / 1000.0),
                Phase::Failed(problem) => format!("stopped: {problem}"),
            };
            let phase = match current.phase {
                Phase::Done => "done",
                Phase::Failed(_) => "failed",
                _ => "running",
            };
            view! {
                <div class="delay-report" data-testid="delay-report" data-phase=phase>
                    <p class="muted" data-testid="delay-status">{status}</p>
                    {current.refusal.clone().map(|failure| view! { <FailureView failure/> })}
                    {current.ended.clone().map(|ended| view! {
                        <p data-testid="delay-ended">
                            "Signed " {current.username.clone()} " out everywhere: ended " {ended} "."
                        </p>
                    })}
                    <table class="delays" data-testid="delay-table">
                        <thead>
                            <tr><th>"scheme"</th><th>"before"</th><th>"kept working after the sign-out"</th><th>"the lesson"</th></tr>
                        </thead>
                        <tbody>
                            {current.rows.iter().map(|row| {
                                let outcome = if row.refused() {
                                    "refused"
                                } else if row.accepted > 0 {
                                    "accepted"
                                } else {
                                    "pending"
                                };
                                let reason = row.reason();
                                view! {
                                    <tr data-testid=format!("delay-row-{}", row.probe.key()) data-probe=row.probe.key()
                                        data-outcome=outcome
                                        data-polls=row.polls.to_string()
                                        data-kept-ms=format!("{:.0}", row.kept_ms())
                                        data-refused-ms=row.first_refused_ms.map(|ms| format!("{ms:.0}"))
                                        data-reason=reason.map(Reason::code)>
                                        <td>
                                            <strong>{row.probe.title()}</strong>
                                            <div class="muted"><code>{row.probe.call()}</code></div>
                                        </td>
                                        <td class="before">{row.before.clone()}</td>
                                        <td class="delay" data-testid=format!("delay-{}", row.probe.key())>
                                            {delay_text(row, &current)}
                                            {match (reason, row.refusal.clone()) {
                                                (Some(reason), _) => view! { <ReasonRule reason/> }.into_any(),
                                                (None, Some(failure)) => view! { <FailureView failure/> }.into_any(),
                                                (None, None) => ().into_any(),
                                            }}
                                        </td>
                                        <td class="muted">{row.probe.promise()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }
        })}
    }
}

/// The lab page's panel: choose a user, measure, read the delays.
#[component]
pub fn RevocationPanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let logins = use_context::<PageLogins>();
    let owner = current_owner();
    let username = RwSignal::new(USERNAME.to_owned());
    let password = RwSignal::new(PASSWORD.to_owned());
    let report = RwSignal::new(None::<DelayReport>);
    let verdict = RwSignal::new(StepState::NotRun);
    let running = RwSignal::new(false);

    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if running.get_untracked() {
            return;
        }
        running.set(true);
        verdict.set(StepState::Running);
        spawn_owned(owner, async move {
            let result =
                measure(client, username.get_untracked(), password.get_untracked(), report).await;
            verdict.set(StepState::from_result(result.and_then(|r| lesson(&r))));
            running.set(false);
            // Every sign-in of the user has ended: the sessions list should say so.
            notify(logins);
        });
    };

    view! {
        <section class="panel revocation-panel" data-testid="revocation-panel" aria-labelledby="revocation-title">
            <h2 id="revocation-title">"Sign out everywhere: how long does each scheme keep working?"</h2>
            <p class="muted">
                "This signs the user in through every scheme — a session cookie, a throwaway hardened device, and a "
                "password grant whose refresh token stays in memory — then signs out everywhere as the access token's "
                "bearer and calls through each scheme every 100 ms for 3 s. A server session, a device and a refresh "
                "token end at once. An access token cannot be recalled: tokenlab refuses one of an ended login within "
                "1 s on every instance, while a check of signature and expiry alone — what most JWT setups do — accepts "
                "it until it expires."
            </p>
            <p class="notice warning">
                "It uses this browser's cookies: its session login replaces the session panel's cookie, and signing out "
                "everywhere ends every sign-in of this user, the other panels' included."
            </p>
            <form class="inline-form" on:submit=start data-testid="revocation-form">
                <label>"Username" <input name="username" prop:value=username on:input=move |ev| username.set(event_target_value(&ev))/></label>
                <label>"Password" <input name="password" type="password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev))/></label>
                <button type="submit" disabled=move || running.get()>"Sign out everywhere and measure"</button>
            </form>
            <p class=move || format!("step-result {}", verdict.get().css()) data-testid="revocation-verdict"
                data-state=move || verdict.get().css()>
                {move || verdict.get().text()}
            </p>
            <DelayTable report/>
        </section>
    }
}

/// The walkthrough's step: the same measurement as the demo user, checked against the lesson.
pub async fn walkthrough_step(
    client: ApiClient,
    report: RwSignal<Option<DelayReport>>,
) -> StepResult {
    let measured = measure(client, USERNAME.to_owned(), PASSWORD.to_owned(), report).await?;
    lesson(&measured)
}

#[cfg(test)]
mod tests {
    use tokenlab_core::wire::{ErrorBody, ErrorDetails};

    use super::*;
    use crate::client::ApiResponse;

    fn refused(reason: Reason) -> ApiFailure {
        let error = ErrorBody { reason, message: String::new(), details: ErrorDetails::default() };
        let response = ApiResponse {
            status: reason.status(),
            body: serde_json::to_value(&error).unwrap(),
            headers: Vec::new(),
        };
        ApiFailure::Refused { error, response }
    }

    fn done_report() -> DelayReport {
        let mut report = DelayReport::new("alice");
        report.phase = Phase::Done;
        for row in &mut report.rows {
            row.polls = 1;
            match row.probe.expected_reason() {
                Some(reason) => {
                    row.first_refused_ms = Some(1.0);
                    row.refusal = Some(refused(reason));
                }
                None => {
                    row.polls = 31;
                    row.accepted = 31;
                    row.last_accepted_ms = Some(3001.0);
                }
            }
        }
        report
    }

    #[test]
    fn the_lesson_holds_only_when_the_answers_say_so() {
        assert!(lesson(&done_report()).is_ok());

        let mut slow = done_report();
        if let Some(access) = slow.row_mut(Probe::Access) {
            access.accepted = 11;
            access.last_accepted_ms = Some(1002.0);
            access.first_refused_ms = Some(1103.0);
        }
        assert!(lesson(&slow).is_err());

        let mut session_survived = done_report();
        if let Some(session) = session_survived.row_mut(Probe::Session) {
            session.accepted = 1;
            session.last_accepted_ms = Some(1.0);
            session.first_refused_ms = Some(101.0);
        }
        assert!(lesson(&session_survived).is_err());

        let mut stateless_refused = done_report();
        if let Some(stateless) = stateless_refused.row_mut(Probe::Stateless) {
            stateless.first_refused_ms = Some(2000.0);
        }
        assert!(lesson(&stateless_refused).is_err());
    }

    #[test]
    fn rows_say_what_happened() {
        let report = done_report();
        let text = |probe| report.row(probe).map(|r| delay_text(r, &report)).unwrap_or_default();
        assert_eq!(text(Probe::Session), "0 ms (next request refused: not_logged_in)");
        assert!(text(Probe::Access).starts_with("0 ms (next request refused: token_revoked"));
        assert_eq!(text(Probe::Stateless), "still accepted after 3.0 s — until its exp");
    }
}
