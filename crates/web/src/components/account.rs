//! Registering an account: the user every scheme panel logs in as.

use leptos::prelude::*;
use leptos::task::spawn_local;
use tokenlab_core::account::{
    PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, validate_password, validate_username,
};

use crate::api::{self, ApiFailure};
use crate::client::ApiClient;
use crate::components::FailureView;

#[derive(Clone, PartialEq)]
enum Outcome {
    Idle,
    Pending,
    Created { id: i64, username: String },
    Refused(ApiFailure),
    NetworkError(String),
}

#[component]
pub fn AccountPanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let outcome = RwSignal::new(Outcome::Idle);

    // The same rules the server enforces, shown before submitting; the server still decides.
    let hint = move || {
        let name = username.get();
        let pass = password.get();
        let mut hints = Vec::new();
        if !name.is_empty()
            && let Err(v) = validate_username(&name)
        {
            hints.push(v.message);
        }
        if !pass.is_empty()
            && let Err(v) = validate_password(&pass)
        {
            hints.push(v.message);
        }
        hints.join("; ")
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        outcome.set(Outcome::Pending);
        let (name, pass) = (username.get_untracked(), password.get_untracked());
        spawn_local(async move {
            let result = api::register(&client, &name, &pass).await;
            outcome.set(match result {
                Ok(answer) => {
                    let account = answer.into_body();
                    Outcome::Created { id: account.id, username: account.username }
                }
                Err(ApiFailure::NoAnswer(err)) => Outcome::NetworkError(err),
                Err(failure) => Outcome::Refused(failure),
            });
            password.set(String::new());
        });
    };

    view! {
        <section class="panel account" aria-labelledby="account-title">
            <h2 id="account-title">"Account"</h2>
            <p class="muted">
                "Every scheme logs in as a user. The demo account "
                <code>"alice"</code>
                " exists already; its password is printed by "
                <code>"just run"</code>
                ". Or register your own:"
            </p>
            <form on:submit=submit data-testid="register-form">
                <label>
                    "Username"
                    <input
                        name="username"
                        autocomplete="username"
                        prop:value=username
                        on:input=move |ev| username.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    {format!("Password ({PASSWORD_MIN_CHARS}–{PASSWORD_MAX_CHARS} characters)")}
                    <input
                        name="password"
                        type="password"
                        autocomplete="new-password"
                        prop:value=password
                        on:input=move |ev| password.set(event_target_value(&ev))
                    />
                </label>
                <p class="hint">{hint}</p>
                <button type="submit" disabled=move || outcome.get() == Outcome::Pending>
                    "Register"
                </button>
            </form>
            {move || match outcome.get() {
                Outcome::Idle | Outcome::Pending => ().into_any(),
                Outcome::Created { id, username } => {
                    view! {
                        <p class="success" role="status" data-testid="account-created">
                            "Created account " <code>{username}</code> " (id " {id} ")."
                        </p>
                    }
                        .into_any()
                }
                Outcome::Refused(failure) => view! { <FailureView failure/> }.into_any(),
                Outcome::NetworkError(err) => {
                    view! { <p class="refusal" role="alert">"No response: " {err}</p> }.into_any()
                }
            }}
        </section>
    }
}
