//! Scheme 2 of the article: the session id is the token — and, in a browser that speaks Device
//! Bound Session Credentials (Chrome, over https), a session the browser binds to a key of its own.

use leptos::prelude::*;
use leptos::task::spawn_local;
use tokenlab_core::Reason;
use tokenlab_core::wire::SessionView;

use crate::api::{self, ApiFailure, ApiResult};
use crate::client::{ApiClient, Refusal};
use crate::components::FailureView;
use crate::logins::{PageLogins, notify};
use crate::server_clock::{ServerClock, format_time};

#[derive(Debug, Clone, PartialEq)]
enum Panel {
    /// Not known yet: the page asks the server once after hydration.
    Checking,
    LoggedOut {
        /// Set when the server reported `session_expired`: the lesson of this scheme.
        expired: Option<Refusal>,
        refusal: Option<ApiFailure>,
    },
    LoggedIn {
        view: SessionView,
        last_call: Option<String>,
    },
}

/// `GET /api/session/me`, once more when the server says the session's short-lived bound cookie
/// is missing or expired (DBSC): it cleared the cookie, and a browser holding the key renews it
/// before it sends the next request. Without the key, the second answer is the same refusal.
/// Also says whether the second call was needed (the browser renewed the cookie meanwhile).
async fn session_me(client: &ApiClient) -> (ApiResult<SessionView>, bool) {
    let first = api::session_me(client).await;
    match &first {
        Err(failure) if failure.reason() == Some(Reason::DbscRefreshRequired) => {
            (api::session_me(client).await, true)
        }
        _ => (first, false),
    }
}

#[component]
pub fn SessionPanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let clock = expect_context::<ServerClock>();
    let panel = RwSignal::new(Panel::Checking);
    let username = RwSignal::new("alice".to_owned());
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let logins = use_context::<PageLogins>();

    // What an answer of `/api/session/me` means for the panel.
    let apply_me =
        move |(result, renewed): (ApiResult<SessionView>, bool), called: bool| match result {
            Ok(answer) => {
                let last_call = called.then(|| {
                format!(
                    "{} OK — signed in as {}{}",
                    answer.status(),
                    answer.user.username,
                    if renewed {
                        " (after the browser renewed the bound cookie with its key: a DBSC refresh)"
                    } else {
                        ""
                    }
                )
            });
                panel.set(Panel::LoggedIn { view: answer.into_body(), last_call });
            }
            Err(failure) if failure.reason() == Some(Reason::SessionExpired) => {
                panel.set(Panel::LoggedOut { expired: failure.refusal(), refusal: None });
            }
            Err(failure) => {
                // Not logged in is the normal state on first load; only an explicit call shows it.
                panel.set(Panel::LoggedOut { expired: None, refusal: called.then_some(failure) });
            }
        };

    Effect::new(move |_| {
        spawn_local(async move {
            match session_me(&client).await {
                (Err(ApiFailure::NoAnswer(_)), _) => {
                    panel.set(Panel::LoggedOut { expired: None, refusal: None });
                }
                answer => apply_me(answer, false),
            }
        });
    });

    let login = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let (name, pass) = (username.get_untracked(), password.get_untracked());
        spawn_local(async move {
            let result = api::session_login(&client, &name, &pass).await;
            busy.set(false);
            match result {
                Ok(answer) => {
                    password.set(String::new());
                    panel.set(Panel::LoggedIn { view: answer.into_body(), last_call: None });
                    notify(logins);
                }
                Err(failure) => {
                    panel.set(Panel::LoggedOut { expired: None, refusal: Some(failure) })
                }
            }
        });
    };

    let call = move |_| {
        busy.set(true);
        spawn_local(async move {
            let answer = session_me(&client).await;
            busy.set(false);
            if !matches!(answer.0, Err(ApiFailure::NoAnswer(_))) {
                apply_me(answer, true);
            }
        });
    };

    let logout = move |_| {
        spawn_local(async move {
            if !matches!(api::session_logout(&client).await, Err(ApiFailure::NoAnswer(_))) {
                panel.set(Panel::LoggedOut { expired: None, refusal: None });
                notify(logins);
            }
        });
    };

    view! {
        <section class="panel scheme" data-testid="session-panel" aria-labelledby="session-title">
            <h2 id="session-title">"Session id as token"</h2>
            <p class="muted">
                "Log in with name and password; the server keeps the login in a session and the browser keeps only "
                "the session id, in an HttpOnly cookie that this page's JavaScript cannot read. Nothing else to store — "
                "but when the session expires, the only way back is to log in again."
            </p>
            {move || match panel.get() {
                Panel::Checking => view! { <p class="muted">"Checking for a session…"</p> }.into_any(),
                Panel::LoggedOut { expired, refusal } => view! {
                    {expired.map(|refusal| view! {
                        <div class="notice expired" data-testid="session-expired" role="alert">
                            <strong>"Session expired — log in again."</strong>
                            <p>{refusal.message.clone()}</p>
                            <p class="explanation">{refusal.explanation()}</p>
                        </div>
                    })}
                    <form on:submit=login data-testid="session-login">
                        <label>
                            "Username"
                            <input name="username" autocomplete="username" prop:value=username
                                on:input=move |ev| username.set(event_target_value(&ev))/>
                        </label>
                        <label>
                            "Password"
                            <input name="password" type="password" autocomplete="current-password" prop:value=password
                                on:input=move |ev| password.set(event_target_value(&ev))/>
                        </label>
                        <button type="submit" disabled=move || busy.get()>"Log in"</button>
                    </form>
                    {refusal.map(|failure| view! { <FailureView failure/> })}
                }.into_any(),
                Panel::LoggedIn { view, last_call } => view! {
                    <dl class="facts">
                        <dt>"Signed in as"</dt>
                        <dd data-testid="session-user">{view.user.username.clone()} " (id " {view.user.id} ")"</dd>
                        <dt>"Session id, as the server sees it"</dt>
                        <dd><code data-testid="session-id">{view.session.id_masked.clone()}</code></dd>
                        <dt>"Idle expiry (slides with each call)"</dt>
                        <dd>
                            <span data-testid="session-idle-left">{clock.countdown(view.session.idle_expires_at)}</span>
                            <span class="muted">" at " {format_time(view.session.idle_expires_at)}</span>
                        </dd>
                        <dt>"Absolute expiry (fixed at login)"</dt>
                        <dd>
                            <span data-testid="session-absolute-left">{clock.countdown(view.session.absolute_expires_at)}</span>
                            <span class="muted">" at " {format_time(view.session.absolute_expires_at)}</span>
                        </dd>
                        <dt>"Bound to this browser (DBSC)"</dt>
                        <dd data-testid="session-bound">{match view.session.bound.clone() {
                            Some(bound) => view! {
                                <span>"yes: a key inside the browser, thumbprint "
                                    <code data-testid="session-bound-key">{bound.key_thumbprint}</code>
                                    "; the short-lived cookie only that key renews lasts until "
                                    {format_time(bound.cookie_expires_at)}</span>
                            }.into_any(),
                            None => view! {
                                <span class="muted">"no: this browser did not bind the session (Device Bound Session Credentials need Chrome, over https)"</span>
                            }.into_any(),
                        }}</dd>
                    </dl>
                    <div class="actions">
                        <button on:click=call disabled=move || busy.get()>"Call a protected API"</button>
                        <button on:click=logout>"Log out"</button>
                    </div>
                    {last_call.map(|text| view! { <p class="success" data-testid="session-call-result">{text}</p> })}
                }.into_any(),
            }}
        </section>
    }
}
