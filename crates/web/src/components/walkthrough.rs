//! The walkthrough: the article, chapter by chapter, each with buttons that make its claim happen
//! against the live server. Every step is a real API call (see the timeline) whose answer is
//! checked against what the chapter says should happen.

use leptos::prelude::*;
use serde_json::json;
use tokenlab_core::Reason;

use crate::client::Method;
use crate::components::{DelayTable, PolicyPicker, revocation_step};
use crate::lab::{
    ComparisonRow, Lab, ReasonRule, StepFn, StepFuture, StepState, boxed, describe, expect_reason,
    expect_status, queries,
};
use crate::storage;

struct Step {
    label: &'static str,
    run: StepFn,
}

struct Chapter {
    key: &'static str,
    title: &'static str,
    /// The article's claims this chapter shows (C1…C9 in the project's summary of the article).
    claims: &'static str,
    explain: &'static [&'static str],
    look_for: &'static str,
    steps: &'static [Step],
}

const PROGRESS_KEY: &str = "tokenlab.walkthrough.done";

const CHAPTERS: &[Chapter] = &[
    Chapter {
        key: "why",
        title: "1. Why tokens",
        claims: "C1, C2, C3",
        explain: &[
            "Checking a name and password is deliberately slow: the password hash (argon2 here) is built to cost time and memory, so that a stolen table of hashes is hard to crack. Doing that on every request would make the server pay that cost every time.",
            "So the server checks the password once and hands back a token. From then on the client shows the token, and the server recognises it with a cheap lookup, or, for a signed token, with no session lookup at all.",
        ],
        look_for: "In the timeline, each request's duration and its x-tokenlab-db-queries header (how many database statements it cost): the logins pay for argon2, the calls after them do not. The password travels only in the two logins. `just bench` measures the same four ways of being recognised.",
        steps: &[
            Step { label: "Log in with name and password", run: why_login },
            Step { label: "Call again with the session cookie only", run: why_session_call },
            Step { label: "Get an access token (password grant)", run: why_token },
            Step { label: "Call with the access token only", run: why_bearer_call },
        ],
    },
    Chapter {
        key: "device",
        title: "2. Device token",
        claims: "C4, C5",
        explain: &[
            "The article's favourite: at login the app sends its device id; the server keeps a token for that device in the database and a copy in a server session. Every request carries the token, and it must match the session's copy.",
            "When the server session times out, the server looks the token up in the database, attaches a fresh session and carries on: the user never logs in again.",
            "As written, the token is the device id itself. A device id is not a secret and never changes, so whoever learns it is the user, forever. The hardened mode gives the device a random secret, stores only its hash, replaces it at every re-attach and lets it expire.",
        ],
        look_for: "x-session-renewed: 1 on the call after the session expired, and the attacker's line in the timeline. In the server state, the as-written device stores its token in plain text; the hardened one only a hash prefix.",
        steps: &[
            Step {
                label: "Log in as written: the device id is the token",
                run: device_login_as_written,
            },
            Step { label: "Call with the device id and token", run: device_call },
            Step {
                label: "Send a token that differs from the session's copy",
                run: device_mismatch,
            },
            Step { label: "Let every server session time out", run: expire_all_sessions },
            Step {
                label: "Call again: the token is re-attached from the database",
                run: device_reattached,
            },
            Step {
                label: "An attacker who only knows the device id",
                run: device_stranger_gets_in,
            },
            Step { label: "Hardened: log in on another device", run: device_login_hardened },
            Step { label: "The attacker tries that device's id", run: device_stranger_refused },
        ],
    },
    Chapter {
        key: "session",
        title: "3. Session id as token",
        claims: "C6, C7",
        explain: &[
            "The simplest scheme: log in with name and password, and the server's session id is the token. The browser keeps it in an HttpOnly cookie and sends it with every request; nothing else needs storing.",
            "Its drawback, as the article says: when the session expires, the only way back is to log in again.",
        ],
        look_for: "The idle expiry in the server state moving forward with each call, then session_expired, once, followed by not_logged_in.",
        steps: &[
            Step { label: "Log in", run: session_login },
            Step { label: "Call with the cookie", run: session_call },
            Step { label: "31 minutes pass on the server's clock", run: idle_31_minutes },
            Step { label: "Call again", run: session_expired_call },
            Step { label: "And again", run: session_gone_call },
        ],
    },
    Chapter {
        key: "submit",
        title: "4. Duplicate submits",
        claims: "C8",
        explain: &[
            "On a bad network a user presses Submit again, or the app retries by itself. Without protection, every copy that reaches the server creates another order.",
            "The article's fix: the server hands out a one-time token with the form and accepts a submission only while that token is unused. tokenlab spends the token in the same transaction that writes the order, so exactly one copy wins, on one server or several.",
            "The standard form of the idea is the Idempotency-Key header: the client names the request, and the server answers every retry with the first response.",
        ],
        look_for: "Two requests in flight at once, one 201 and one 409 duplicate_submit naming the order; the form token in the server state marked as spent; idempotent-replayed: true on the retry.",
        steps: &[
            Step { label: "Log in", run: session_login },
            Step { label: "Open the order form (one-time token)", run: submit_form_token },
            Step {
                label: "Double-click on a slow network: submit twice at once",
                run: submit_twice,
            },
            Step { label: "Order with an Idempotency-Key, then retry", run: submit_idempotent },
            Step { label: "Count the orders", run: submit_count },
        ],
    },
    Chapter {
        key: "refresh",
        title: "5. Expiry and refresh",
        claims: "C9",
        explain: &[
            "An access token is checked by its signature alone, so the server cannot take it back: its short life is the only limit. A refresh token, which the server does remember, gets a new access token when the old one expires.",
            "Each refresh returns a new access token, a new refresh token and expires_in; the client must replace what it stored. Once the refresh token's own life is over, the user logs in again.",
            "The steps follow the preset chosen below: switch it and run the chapter again to compare the article's month-long tokens with shorter ones.",
        ],
        look_for: "token_expired after the clock jump; in the server state, the family's chain: rotated, current — and after the replay, the whole family revoked as reused.",
        steps: &[
            Step { label: "Log in: access + refresh tokens", run: refresh_login },
            Step { label: "Use the access token", run: refresh_use_access },
            Step { label: "Let the access token expire", run: refresh_pass_access_life },
            Step { label: "Use it again", run: refresh_access_expired },
            Step { label: "Refresh: replace both stored tokens", run: refresh_rotate },
            Step { label: "Use the new access token", run: refresh_use_access },
            Step {
                label: "Someone replays the old refresh token, 11 s later",
                run: refresh_replay,
            },
            Step {
                label: "The real client's refresh token is revoked too",
                run: refresh_family_revoked,
            },
            Step {
                label: "Log in again, then stay away past the refresh token's life",
                run: refresh_outlived,
            },
        ],
    },
    Chapter {
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
    },
];

fn why_login(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.session_login().await?;
        expect_status(&response, 200)?;
        Ok(format!(
            "200: password checked once; the session id came back as an HttpOnly cookie ({} statements)",
            queries(&response)
        ))
    })
}

fn why_session_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.client.get("/api/session/me").await?;
        expect_status(&response, 200)?;
        Ok(format!(
            "200 without a password: a session lookup and the idle timer's update ({} statements)",
            queries(&response)
        ))
    })
}

fn why_token(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.password_grant().await?;
        Ok(format!(
            "200: an access token for {} s and a refresh token ({} statements)",
            response.body["expires_in"],
            queries(&response)
        ))
    })
}

fn why_bearer_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        let response = lab.jwt_me(&access).await?;
        expect_status(&response, 200)?;
        Ok(format!(
            "200: the signature proves the token; no session at all ({} statement: its signing key)",
            queries(&response)
        ))
    })
}

fn device_login_as_written(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.device_login("my-phone-1234", "as_written").await?;
        let token = lab.recall(|m| m.device_token.clone());
        if token != "my-phone-1234" {
            return Err(format!("as written, the token should be the device id, got {token}"));
        }
        Ok(format!(
            "200: device token = device id = {token}; it never expires ({})",
            describe(&response)
        ))
    })
}

fn device_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.device_me().await?;
        expect_status(&response, 200)?;
        Ok("200: the token matches the session's copy".to_owned())
    })
}

fn device_mismatch(lab: Lab) -> StepFuture {
    boxed(async move {
        let id = lab.recall(|m| m.device_id.clone());
        let response = lab
            .client
            .call(
                Method::Get,
                "/api/device/me",
                None,
                &[("x-device-id", id), ("x-device-token", "wrong".to_owned())],
            )
            .await?;
        expect_reason(&response, Reason::DeviceTokenMismatch)?;
        Ok("401 device_token_mismatch: a live session is not enough, the token must match"
            .to_owned())
    })
}

fn expire_all_sessions(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.client.post("/api/demo/sessions/expire", json!({})).await?;
        expect_status(&response, 200)?;
        Ok(format!("{} server sessions dropped", response.body["expired"]))
    })
}

fn device_reattached(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.device_me().await?;
        expect_status(&response, 200)?;
        if response.header("x-session-renewed") != Some("1") {
            return Err("200, but no x-session-renewed: 1".to_owned());
        }
        Ok(format!(
            "200 with x-session-renewed: 1 — found in the database, new session attached, no password ({} statements)",
            queries(&response)
        ))
    })
}

fn device_stranger_gets_in(lab: Lab) -> StepFuture {
    boxed(async move {
        let id = lab.recall(|m| m.device_id.clone());
        let response = lab.device_me_as_attacker(&id).await?;
        expect_status(&response, 200)?;
        Ok("200 — the attacker is in: as written, knowing the device id is being the user"
            .to_owned())
    })
}

fn device_login_hardened(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.device_login("my-laptop-5678", "hardened").await?;
        let token = lab.recall(|m| m.device_token.clone());
        Ok(format!("200: a random secret of {} hex characters, stored only as a hash", token.len()))
    })
}

fn device_stranger_refused(lab: Lab) -> StepFuture {
    boxed(async move {
        let id = lab.recall(|m| m.device_id.clone());
        let response = lab.device_me_as_attacker(&id).await?;
        expect_reason(&response, Reason::DeviceUnknown)?;
        Ok("401 device_unknown: the device id alone gets nothing".to_owned())
    })
}

fn session_login(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.session_login().await?;
        expect_status(&response, 200)?;
        let masked = response.body["session"]["id_masked"].as_str().unwrap_or("?").to_owned();
        Ok(format!("200: session {masked}, idle for 30 min at most, 12 h in all"))
    })
}

fn session_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.client.get("/api/session/me").await?;
        expect_status(&response, 200)?;
        Ok("200: the cookie alone; the idle expiry moved forward".to_owned())
    })
}

fn idle_31_minutes(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.advance_clock(31 * 60).await?;
        Ok("the server's clock is 31 minutes later".to_owned())
    })
}

fn session_expired_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.client.get("/api/session/me").await?;
        expect_reason(&response, Reason::SessionExpired)?;
        Ok("401 session_expired: idle for longer than 30 minutes".to_owned())
    })
}

fn session_gone_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.client.get("/api/session/me").await?;
        expect_reason(&response, Reason::NotLoggedIn)?;
        Ok("401 not_logged_in: the session is gone; only a new login helps (C7)".to_owned())
    })
}

fn submit_form_token(lab: Lab) -> StepFuture {
    boxed(async move {
        let before = lab.order_count().await?;
        let response = lab.client.get("/api/orders/form-token").await?;
        expect_status(&response, 200)?;
        let token = crate::lab::string_field(&response.body, "form_token")?;
        lab.remember(|m| {
            m.form_token = token;
            m.orders_before = before;
        });
        Ok(format!("a one-time token; {before} orders so far"))
    })
}

fn submit_twice(lab: Lab) -> StepFuture {
    boxed(async move {
        let token = lab.recall(|m| m.form_token.clone());
        let (_, duplicate) = lab.submit_twice_slowly("green tea", token).await?;
        let before = lab.recall(|m| m.orders_before);
        let after = lab.order_count().await?;
        if after != before + 1 {
            return Err(format!("expected {} orders, found {after}", before + 1));
        }
        Ok(format!(
            "one 201 and one 409 duplicate_submit ({}); exactly one new order",
            duplicate.body["message"].as_str().unwrap_or_default()
        ))
    })
}

async fn order_with_key(lab: Lab, key: String) -> Result<crate::client::ApiResponse, String> {
    lab.client
        .call(
            Method::Post,
            "/api/orders",
            Some(json!({ "item": "oolong", "quantity": 1 })),
            &[("idempotency-key", key)],
        )
        .await
}

fn submit_idempotent(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = crate::client::random_key();
        let first = order_with_key(lab, key.clone()).await?;
        expect_status(&first, 201)?;
        let retry = order_with_key(lab, key).await?;
        expect_status(&retry, 201)?;
        if retry.header("idempotent-replayed") != Some("true") || retry.body != first.body {
            return Err("the retry was not answered with the first response".to_owned());
        }
        Ok(format!("201, then the same 201 replayed (order #{})", first.body["order"]["id"]))
    })
}

fn submit_count(lab: Lab) -> StepFuture {
    boxed(async move {
        let before = lab.recall(|m| m.orders_before);
        let after = lab.order_count().await?;
        if after != before + 2 {
            return Err(format!("expected {} orders, found {after}", before + 2));
        }
        Ok(format!("{after} orders: one per intended submission, none per retry"))
    })
}

fn refresh_login(lab: Lab) -> StepFuture {
    boxed(async move {
        let (name, _, _) = lab.policy().await?;
        let response = lab.password_grant().await?;
        Ok(format!(
            "preset {name}: access for {} s, refresh for {} s",
            response.body["expires_in"], response.body["refresh_expires_in"]
        ))
    })
}

fn refresh_use_access(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        let response = lab.jwt_me(&access).await?;
        expect_status(&response, 200)?;
        Ok("200: the signature and the expiry are all the server checks".to_owned())
    })
}

fn refresh_pass_access_life(lab: Lab) -> StepFuture {
    boxed(async move {
        let access_seconds = lab.recall(|m| m.access_lifetime_seconds);
        if access_seconds <= 0 {
            return Err("no access token yet: log in first".to_owned());
        }
        // A minute beyond, to clear the 5 s leeway for clock skew.
        lab.advance_clock(access_seconds + 60).await?;
        Ok(format!("the clock moved {} s", access_seconds + 60))
    })
}

fn refresh_access_expired(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        let response = lab.jwt_me(&access).await?;
        expect_reason(&response, Reason::TokenExpired)?;
        Ok("401 token_expired".to_owned())
    })
}

fn refresh_rotate(lab: Lab) -> StepFuture {
    boxed(async move {
        let refresh = lab.recall(|m| m.refresh_token.clone());
        let response = lab.refresh_with(&refresh).await?;
        expect_status(&response, 200)?;
        lab.keep_tokens(&response)?;
        Ok(format!(
            "200: new access token, new refresh token, expires_in {} — both stored ones replaced",
            response.body["expires_in"]
        ))
    })
}

fn refresh_replay(lab: Lab) -> StepFuture {
    boxed(async move {
        // Past the 10 s in which a lost response may be retried with the same token.
        lab.advance_clock(11).await?;
        let stolen = lab.recall(|m| m.spent_refresh_token.clone());
        let response = lab.refresh_as_attacker(&stolen).await?;
        expect_reason(&response, Reason::RefreshReused)?;
        Ok("400 refresh_reused: a spent token came back, so the whole family is revoked".to_owned())
    })
}

fn refresh_family_revoked(lab: Lab) -> StepFuture {
    boxed(async move {
        let current = lab.recall(|m| m.refresh_token.clone());
        let response = lab.refresh_with(&current).await?;
        expect_reason(&response, Reason::RefreshRevoked)?;
        Ok("400 refresh_revoked: victim and thief alike must log in again".to_owned())
    })
}

fn refresh_outlived(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.password_grant().await?;
        let refresh_seconds = lab.recall(|m| m.refresh_lifetime_seconds);
        lab.advance_clock(refresh_seconds + 60).await?;
        let current = lab.recall(|m| m.refresh_token.clone());
        let response = lab.refresh_with(&current).await?;
        expect_reason(&response, Reason::RefreshExpired)?;
        Ok(format!(
            "400 refresh_expired after {} away: log in again",
            crate::server_clock::format_remaining(refresh_seconds + 60)
        ))
    })
}

/// Session, device and refresh token refused at the next request; the access token within 1 s;
/// a JWT check without revocation still accepting it when the polling ends.
fn revocation_delay(lab: Lab) -> StepFuture {
    boxed(revocation_step(lab.client, lab.revocation))
}

fn compare_sign_in(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_status(&lab.session_login().await?, 200)?;
        lab.device_login("my-phone-1234", "as_written").await?;
        lab.password_grant().await?;
        lab.comparison.set(Vec::new());
        Ok("a session cookie, a device token and an access token".to_owned())
    })
}

fn compare_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let session = lab.client.get("/api/session/me").await?;
        let device = lab.device_me().await?;
        let access = lab.recall(|m| m.access_token.clone());
        let bearer = lab.jwt_me(&access).await?;
        let outcome = |response: &crate::client::ApiResponse, ok: &str| {
            if response.ok() { ok.to_owned() } else { describe(response) }
        };
        let reattached = device.header("x-session-renewed") == Some("1");
        let run = lab.comparison.with_untracked(|rows| rows.first().map_or(0, |r| r.run)) + 1;
        lab.comparison.set(vec![
            ComparisonRow {
                run,
                scheme: "session id as token",
                sent: "cookie tl_session".to_owned(),
                queries: queries(&session),
                outcome: outcome(&session, "200"),
                reason: session.reason(),
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
                reason: device.reason(),
            },
            ComparisonRow {
                run,
                scheme: "access token",
                sent: "Authorization: Bearer …".to_owned(),
                queries: queries(&bearer),
                outcome: outcome(&bearer, "200, until its own expiry"),
                reason: bearer.reason(),
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

fn load_progress() -> Vec<&'static str> {
    let saved = storage::get(PROGRESS_KEY).unwrap_or_default();
    CHAPTERS.iter().map(|c| c.key).filter(|key| saved.split(',').any(|s| s == *key)).collect()
}

fn save_progress(done: &[&'static str]) {
    storage::set(PROGRESS_KEY, &done.join(","));
}

#[component]
pub fn Walkthrough() -> impl IntoView {
    let lab = Lab::from_context();
    provide_context(lab);
    let done = RwSignal::new(Vec::<&'static str>::new());
    // Progress lives in the browser; read it only there, after hydration.
    Effect::new(move |_| done.set(load_progress()));
    let resetting = RwSignal::new(None::<StepState>);
    let reset_demo = move |_| {
        lab.run(async move {
            resetting.set(Some(StepState::Running));
            let result = lab.reset().await;
            if result.is_ok() {
                done.set(Vec::new());
                save_progress(&[]);
            }
            resetting.set(Some(StepState::from_result(result)));
        });
    };
    view! {
        <section class="walkthrough" aria-labelledby="walkthrough-title">
            <h2 id="walkthrough-title">"Walkthrough: the article, chapter by chapter"</h2>
            <p>
                "Each chapter explains one part of the article, then lets you make it happen. Every button is a real request "
                "to the server's public API: watch it in the timeline and its effect in the server state."
            </p>
            <div class="progress" data-testid="progress">
                <progress max=CHAPTERS.len() value=move || done.get().len()></progress>
                <span>{move || format!("{} of {} chapters done", done.get().len(), CHAPTERS.len())}</span>
                <button class="reset-demo" disabled=move || lab.busy.get() on:click=reset_demo>"Reset demo"</button>
                {move || resetting.get().map(|state| view! { <span class=format!("step-result {}", state.css())>{state.text()}</span> })}
            </div>
            {CHAPTERS.iter().map(|chapter| view! { <ChapterView chapter done/> }).collect_view()}
        </section>
    }
}

#[component]
fn ChapterView(chapter: &'static Chapter, done: RwSignal<Vec<&'static str>>) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let states: Vec<RwSignal<StepState>> =
        chapter.steps.iter().map(|_| RwSignal::new(StepState::NotRun)).collect();
    let states = StoredValue::new(states);

    let mark_progress = move || {
        let all_passed = states
            .with_value(|s| s.iter().all(|st| matches!(st.get_untracked(), StepState::Passed(_))));
        done.update(|keys| {
            let present = keys.contains(&chapter.key);
            if all_passed && !present {
                keys.push(chapter.key);
            }
        });
        if all_passed {
            save_progress(&done.get_untracked());
        }
    };
    let run_step = move |index: usize| {
        let state = states.with_value(|s| s[index]);
        lab.run(async move {
            state.set(StepState::Running);
            let result = (chapter.steps[index].run)(lab).await;
            state.set(StepState::from_result(result));
            mark_progress();
        });
    };
    let run_chapter = move |_| {
        lab.run(async move {
            states.with_value(|s| s.iter().for_each(|st| st.set(StepState::NotRun)));
            if let Err(problem) = lab.reset_keeping_preset().await {
                states.with_value(|s| {
                    s[0].set(StepState::Failed(format!("reset failed: {problem}")))
                });
            } else {
                for (index, step) in chapter.steps.iter().enumerate() {
                    let state = states.with_value(|s| s[index]);
                    state.set(StepState::Running);
                    let result = (step.run)(lab).await;
                    let failed = result.is_err();
                    state.set(StepState::from_result(result));
                    if failed {
                        break;
                    }
                }
                mark_progress();
            }
        });
    };

    view! {
        <article class="chapter" id=chapter.key data-testid=format!("chapter-{}", chapter.key)
            data-done=move || done.get().contains(&chapter.key).then_some("true")>
            <h3>
                {chapter.title}
                " " <span class="claims">{chapter.claims}</span>
                {move || done.get().contains(&chapter.key).then(|| view! { <span class="done-badge">"✓ done"</span> })}
            </h3>
            {chapter.explain.iter().map(|p| view! { <p>{*p}</p> }).collect_view()}
            <p class="look-for"><strong>"What to look for: "</strong>{chapter.look_for}</p>
            {(chapter.key == "refresh").then(|| view! { <PolicyPicker/> })}
            <button class="run-chapter" disabled=move || lab.busy.get() on:click=run_chapter>
                "Run the chapter from a clean state"
            </button>
            <ol class="steps">
                {chapter
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(index, step)| {
                        let state = states.with_value(|s| s[index]);
                        view! {
                            <li class=move || format!("step {}", state.get().css()) data-state=move || state.get().css()>
                                <button class="do-it" disabled=move || lab.busy.get()
                                    on:click=move |_| run_step(index)>"do it"</button>
                                " " <span class="label">{step.label}</span>
                                <div class="step-result">{move || state.get().text()}</div>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
            {(chapter.key == "leftout").then(|| view! { {move || lab.revocation.with(Option::is_none).then(|| view! {
                    <p class="muted">"Step 1 fills in each scheme's revocation delay here."</p>
                })}
                <DelayTable report=lab.revocation/> <Comparison/> <p><a href="/attacks">"Open the attack lab →"</a></p> })}
        </article>
    }
}

/// The comparator's table: one moment, three schemes.
#[component]
fn Comparison() -> impl IntoView {
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
