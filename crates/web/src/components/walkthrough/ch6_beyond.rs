//! Chapter 6: what the article leaves out. Ending a login — measured, scheme by scheme — and the
//! comparator: one moment (every server session expired), three schemes, three outcomes.

use leptos::prelude::*;
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;

use super::{Chapter, Extra, Step, ch2_device::expire_all_sessions};
use crate::api::{self, ApiResult};
use crate::components::revocation_step;
use crate::lab::{
    ComparisonRow, Lab, ReasonRule, StepFuture, StepState, answered, boxed, describe,
    expect_reason, expect_status, queries, reason_of,
};

pub(super) static CHAPTER: Chapter = Chapter {
    key: "leftout",
    title: "6. What the article leaves out",
    claims: "C5, C7 side by side; sign-out",
    explain: &[
        "Ending a login is the half the article leaves out. Signing out everywhere ends every server session, device and refresh-token family of the user at once: the server deletes or revokes what it holds, and the next request is refused. An access token is different: it is a signed statement the server cannot take back. tokenlab keeps, per user, the moment before which its access tokens are no longer honoured, and every instance learns of it within a second without a database statement per request. Most JWT setups check only the signature and the expiry, and accept the token until it expires — with the article's month-long access token, for a month.",
        "Expire every server session at once and call through each scheme: the device token re-attaches from the database, the session id asks for a login, and the access token does not notice, because it never used a session.",
        "The attack lab shows each weakness of the article's advice exploited, and the rule that stops it: a stolen device id, a replayed refresh token, session fixation, a cross-site request, forged JWTs, and a double submit.",
    ],
    look_for: "The delays below: how long each credential kept working after the sign-out was answered, and the reason it was refused with (the stateless check is never refused). Then the comparison: what each client sent, how many database statements the server needed, and what came back.",
    steps: &[
        Step {
            label: "Sign in through every scheme, sign out everywhere, then call each every 100 ms for 3 s",
            run: revocation_delay,
        },
        Step { label: "Sign in through all three schemes", run: compare_sign_in },
        Step { label: "Expire every server session now", run: expire_all_sessions },
        Step { label: "Call through each scheme", run: compare_call },
    ],
    extras: &[Extra::RevocationDelays, Extra::Comparator, Extra::AttackLabLink],
};

/// Session, device and refresh token refused at the next request; the access token within 1 s;
/// a JWT check without revocation still accepting it when the polling ends.
fn revocation_delay(lab: Lab) -> StepFuture {
    boxed(revocation_step(lab.client, lab.revocation))
}

fn compare_sign_in(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_status(&lab.session_login().await, 200)?;
        lab.device_login("my-phone-1234", DeviceMode::AsWritten).await?;
        lab.password_grant().await?;
        lab.comparison.set(Vec::new());
        Ok("a session cookie, a device token and an access token".to_owned())
    })
}

fn compare_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let session = answered(api::session_me(&lab.client).await)?;
        let device = answered(lab.device_me().await)?;
        let access = lab.recall(|m| m.access_token.clone());
        let bearer = answered(lab.jwt_me(&access).await)?;
        let reattached =
            device.as_ref().is_ok_and(|me| me.header("x-session-renewed") == Some("1"));
        let run = lab.comparison.with_untracked(|rows| rows.first().map_or(0, |r| r.run)) + 1;
        lab.comparison.set(vec![
            ComparisonRow {
                run,
                scheme: "session id as token",
                sent: "cookie tl_session".to_owned(),
                queries: queries(&session),
                outcome: outcome(&session, "200"),
                reason: reason_of(&session),
            },
            ComparisonRow {
                run,
                scheme: "device token",
                sent: "cookie tl_device, X-Device-Id, X-Device-Token".to_owned(),
                queries: queries(&device),
                outcome: outcome(
                    &device,
                    if reattached { "200, re-attached from the database" } else { "200" },
                ),
                reason: reason_of(&device),
            },
            ComparisonRow {
                run,
                scheme: "access token",
                sent: "Authorization: Bearer …".to_owned(),
                queries: queries(&bearer),
                outcome: outcome(&bearer, "200, until its own expiry"),
                reason: reason_of(&bearer),
            },
        ]);
        expect_reason(&session, Reason::NotLoggedIn)?;
        expect_status(&device, 200)?;
        if !reattached {
            return Err("the device call succeeded without x-session-renewed: 1".to_owned());
        }
        expect_status(&bearer, 200)?;
        Ok("session: log in again; device: re-attached; access token: unaffected".to_owned())
    })
}

/// `ok` for an accepted call; otherwise its status and reason.
fn outcome<T>(result: &ApiResult<T>, ok: &str) -> String {
    if result.is_ok() { ok.to_owned() } else { describe(result) }
}

/// The comparator's table: one moment, three schemes.
#[component]
pub(super) fn Comparison() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let verdict = RwSignal::new(StepState::NotRun);
    // The comparator in one click, for a learner who signed in already (step 1 above).
    let expire_and_compare = move |_| {
        lab.run(async move {
            verdict.set(StepState::Running);
            let result = async {
                expire_all_sessions(lab).await?;
                compare_call(lab).await
            }
            .await;
            verdict.set(StepState::from_result(result));
        });
    };
    view! {
        <div class="comparison" data-testid="comparison">
            <p>
                <button class="expire-now" disabled=move || lab.busy.get() on:click=expire_and_compare>
                    "Expire every server session now, then call through each scheme"
                </button>
                " " <span class=move || format!("step-result {}", verdict.get().css()) data-testid="comparator-verdict">
                    {move || verdict.get().text()}
                </span>
            </p>
            <table>
                <thead>
                    <tr><th>"scheme"</th><th>"the client sent"</th><th>"DB statements"</th><th>"outcome"</th></tr>
                </thead>
                <tbody>
                    <For each=move || lab.comparison.get() key=|row| (row.run, row.scheme) let:row>
                        <tr data-scheme=row.scheme>
                            <td>{row.scheme}</td>
                            <td><code>{row.sent.clone()}</code></td>
                            <td class="queries">{row.queries.clone()}</td>
                            <td>
                                {row.outcome.clone()}
                                {row.reason.map(|reason| view! { <ReasonRule reason/> })}
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
            {move || lab.comparison.get().is_empty().then(|| view! {
                <p class="muted">"Sign in through all three schemes (step 1), then expire and compare: the table fills in."</p>
            })}
        </div>
    }
}
