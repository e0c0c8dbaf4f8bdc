//! Every sign-in of the user, whatever the scheme, in one list: the server's answer to
//! `GET /api/sessions`, an "end" button per entry (`DELETE /api/sessions/{id}`), and signing out
//! everywhere (`POST /api/sessions/revoke-all`). OWASP ASVS V7.5: a user can see their active
//! sessions and end any of them.
//!
//! The list is asked for with one of the credentials the page holds (the session cookie, this
//! device's token, or the access token), chosen in the panel: the server marks the asker's own
//! entry as `current`, and ending it ends the credential the panel is asking with.

use leptos::prelude::*;
use time::OffsetDateTime;
use tokenlab_core::wire::{ActiveSession, Ended, RevokeAll, RevokedAll};

use crate::api::{self, ApiFailure, Credential};
use crate::client::ApiClient;
use crate::components::FailureView;
use crate::lab::{current_owner, plural, spawn_owned};
use crate::logins::{PageLogins, device_credentials, notify};
use crate::server_clock::{ServerClock, format_time};

/// Which credential the panel's requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AskAs {
    Cookie,
    Device,
    Bearer,
}

impl AskAs {
    const ALL: [AskAs; 3] = [AskAs::Cookie, AskAs::Device, AskAs::Bearer];

    fn label(self) -> &'static str {
        match self {
            AskAs::Cookie => "session cookie",
            AskAs::Device => "this device",
            AskAs::Bearer => "access token",
        }
    }

    fn key(self) -> &'static str {
        match self {
            AskAs::Cookie => "cookie",
            AskAs::Device => "device",
            AskAs::Bearer => "bearer",
        }
    }

    /// What a request asking as `self` sends besides the browser's cookies, or why it cannot be
    /// sent: a credential the page does not hold is not replaced by another one.
    fn credential(self, logins: Option<PageLogins>) -> Result<Credential, String> {
        match self {
            AskAs::Cookie => Ok(Credential::Cookies),
            AskAs::Device => device_credentials().map(Credential::Device).ok_or_else(|| {
                "This page holds no device token: log in on the device panel first.".to_owned()
            }),
            AskAs::Bearer => logins
                .and_then(|l| {
                    let token = l.access_token.get_untracked()?;
                    if l.access_bound.get_untracked() {
                        let key = crate::dpop::loaded_key()?;
                        Some(Credential::Dpop { token, key })
                    } else {
                        Some(Credential::Bearer(token))
                    }
                })
                .ok_or_else(|| {
                    "This page holds no access token: log in (or call) on the access + refresh panel first."
                        .to_owned()
                }),
        }
    }
}

/// What the page holds, most specific first: the credential the list is asked with until the
/// learner picks another.
fn held_credential(logins: Option<PageLogins>) -> AskAs {
    if logins.is_some_and(|l| l.access_token.get_untracked().is_some()) {
        AskAs::Bearer
    } else if device_credentials().is_some() {
        AskAs::Device
    } else {
        AskAs::Cookie
    }
}

#[derive(Debug, Clone, PartialEq)]
enum List {
    NotAsked,
    Loaded { asked_as: AskAs, entries: Vec<ActiveSession> },
    Refused { asked_as: AskAs, refusal: ApiFailure },
    CannotAsk(String),
}

/// The last action's outcome, in words.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done(String),
    Refused(ApiFailure),
}

/// What the panel can do to the sign-ins it lists.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// End one entry.
    End(ActiveSession),
    /// Sign out everywhere, sparing the asker's own sign-in or not.
    RevokeAll { keep_current: bool },
}

/// The `ended` counts of a sign-out everywhere: "2 server sessions, 1 device and 0 refresh families".
pub(crate) fn describe_ended(ended: &Ended) -> String {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    format!(
        "{}, {} and {}",
        plural(count(ended.sessions), "server session", "server sessions"),
        plural(count(ended.devices), "device", "devices"),
        plural(count(ended.refresh_families), "refresh family", "refresh families"),
    )
}

/// `{"ended": {...}, "access_token_bound_ms": 1000}` in one sentence.
fn describe_revoke_all(revoked: &RevokedAll, keep_current: bool) -> String {
    format!(
        "Signed out everywhere{}: ended {}; their access tokens are refused within {} ms.",
        if keep_current { " except this one" } else { "" },
        describe_ended(&revoked.ended),
        revoked.access_token_bound_ms,
    )
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[component]
pub fn SessionsPanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let clock = expect_context::<ServerClock>();
    let logins = use_context::<PageLogins>();
    let owner = current_owner();
    let ask_as = RwSignal::new(AskAs::Cookie);
    // Set once the learner picks a credential; until then the list follows what the page holds.
    let picked = StoredValue::new(false);
    let list = RwSignal::new(List::NotAsked);
    let outcome = RwSignal::new(None::<Outcome>);
    let busy = RwSignal::new(false);
    // Loads overlap when panels sign in quickly; only the newest answer may land.
    let latest = StoredValue::new(0_u64);

    let load = move || {
        if !picked.get_value() {
            ask_as.set(held_credential(logins));
        }
        let asked_as = ask_as.get_untracked();
        latest.update_value(|n| *n += 1);
        let this_load = latest.get_value();
        let credential = match asked_as.credential(logins) {
            Ok(credential) => credential,
            Err(why) => {
                list.set(List::CannotAsk(why));
                return;
            }
        };
        spawn_owned(owner, async move {
            let result = api::sessions(&client, &credential).await;
            if latest.get_value() != this_load {
                return;
            }
            list.set(match result {
                Ok(answer) => List::Loaded { asked_as, entries: answer.into_body().sessions },
                Err(refusal) => List::Refused { asked_as, refusal },
            });
        });
    };

    // Once after hydration, then whenever a panel of the page signs in or out.
    Effect::new(move |_| {
        if let Some(logins) = logins {
            logins.track();
        }
        load();
    });

    let pick = move |choice: AskAs| {
        picked.set_value(true);
        ask_as.set(choice);
        outcome.set(None);
        load();
    };

    // Sends one action with the chosen credential; afterwards the list is asked for again (with
    // the same credential, which the action may just have ended: the server's answer says so).
    let act = move |action: Action| {
        let credential = match ask_as.get_untracked().credential(logins) {
            Ok(credential) => credential,
            Err(why) => {
                list.set(List::CannotAsk(why));
                return;
            }
        };
        busy.set(true);
        spawn_owned(owner, async move {
            let result = match action {
                Action::End(entry) => {
                    api::end_session(&client, &credential, &entry.id).await.map(|_| {
                        if entry.current {
                            "Ended the sign-in this list was asked with: its next request will be refused."
                                .to_owned()
                        } else {
                            "Ended. The panel that used it is refused at its next call.".to_owned()
                        }
                    })
                }
                Action::RevokeAll { keep_current } => {
                    let request = RevokeAll { keep_current };
                    api::revoke_all(&client, &credential, &request)
                        .await
                        .map(|revoked| describe_revoke_all(&revoked, keep_current))
                }
            };
            busy.set(false);
            outcome.set(Some(match result {
                Ok(text) => Outcome::Done(text),
                Err(failure) => Outcome::Refused(failure),
            }));
            load();
            notify(logins);
        });
    };

    let end = move |entry: ActiveSession| act(Action::End(entry));
    let revoke_all = move |keep_current: bool| act(Action::RevokeAll { keep_current });

    let countdown = move |at: Option<OffsetDateTime>| match at {
        Some(at) => view! {
            <span class="countdown" title=format_time(at)>{clock.countdown(at)}</span>
        }
        .into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };

    view! {
        <section class="panel sessions-panel" data-testid="sessions-panel" aria-labelledby="sessions-title">
            <h2 id="sessions-title">"Your sign-ins, every scheme"</h2>
            <p class="muted">
                "One list of everything that signs this user in: each session-id login, each device, each refresh-token "
                "family (with its access tokens). End one, or sign out everywhere. The ids are opaque handles, never a "
                "session id or a token. OWASP ASVS V7.5: a user can see their sessions and end them."
            </p>
            <fieldset class="ask-as" data-testid="sessions-ask-as">
                <legend>"ask as"</legend>
                {AskAs::ALL
                    .into_iter()
                    .map(|choice| view! {
                        <label class="inline">
                            <input type="radio" name="sessions-ask-as" value=choice.key()
                                prop:checked=move || ask_as.get() == choice
                                on:change=move |_| pick(choice)/>
                            {choice.label()}
                        </label>
                    })
                    .collect_view()}
            </fieldset>
            <div class="actions">
                <button on:click=move |_| { outcome.set(None); load(); } disabled=move || busy.get()>"Refresh the list"</button>
                <button class="danger" on:click=move |_| revoke_all(false) disabled=move || busy.get()>"Sign out everywhere"</button>
                <button on:click=move |_| revoke_all(true) disabled=move || busy.get()>"Sign out everywhere except this one"</button>
            </div>
            {move || outcome.get().map(|o| match o {
                Outcome::Done(text) => view! { <p class="success" data-testid="sessions-outcome">{text}</p> }.into_any(),
                Outcome::Refused(failure) => view! { <div data-testid="sessions-outcome"><FailureView failure/></div> }.into_any(),
            })}
            {move || match list.get() {
                List::NotAsked => view! { <p class="muted">"Asking the server…"</p> }.into_any(),
                List::CannotAsk(why) => view! { <p class="muted" data-testid="sessions-cannot-ask">{why}</p> }.into_any(),
                List::Refused { asked_as, refusal } => view! {
                    <p class="muted">"Asked as " {asked_as.label()} ":"</p>
                    <div data-testid="sessions-refused"><FailureView failure=refusal/></div>
                    <p class="muted">
                        "The server refuses the credential this list asks with (ended, expired, or never signed in): "
                        "sign in on its panel, or ask as another."
                    </p>
                }.into_any(),
                List::Loaded { asked_as, entries } => view! {
                    <p class="muted" data-testid="sessions-asked-as">
                        "Asked as " {asked_as.label()} ": " {plural(entries.len() as i64, "sign-in", "sign-ins")} "."
                    </p>
                    <table class="sessions" data-testid="sessions-list">
                        <thead>
                            <tr>
                                <th>"scheme"</th><th>"user agent"</th><th>"created"</th><th>"last seen"</th>
                                <th>"idle expiry"</th><th>"absolute expiry"</th><th></th>
                            </tr>
                        </thead>
                        <tbody>
                            {entries.into_iter().map(|entry| {
                                let for_end = entry.clone();
                                view! {
                                    <tr data-scheme=entry.scheme.as_str() data-session-id=entry.id.clone()
                                        data-current=entry.current.then_some("true") class:current=entry.current>
                                        <td class="scheme">
                                            <code>{entry.scheme.as_str()}</code>
                                            {entry.current.then(|| view! { " " <span class="badge this-one">"this one"</span> })}
                                            <div class="muted">{entry.label.clone()}</div>
                                        </td>
                                        <td class="user-agent" title=entry.user_agent.clone()>{shorten(&entry.user_agent, 48)}</td>
                                        <td>{format_time(entry.created_at)}</td>
                                        <td>{entry.last_seen_at.map_or_else(|| "—".to_owned(), format_time)}</td>
                                        <td>{countdown(entry.idle_expires_at)}</td>
                                        <td>{countdown(entry.absolute_expires_at)}</td>
                                        <td>
                                            <button class="end" disabled=move || busy.get()
                                                on:click=move |_| end(for_end.clone())>"End"</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}
