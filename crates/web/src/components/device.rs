//! Scheme 1 of the article: the device token, as written and hardened, side by side — and bound
//! to a key this browser holds (DPoP), which no script can copy.

use leptos::prelude::*;
use leptos::task::spawn_local;
use time::OffsetDateTime;
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::display::mask_secret;
use tokenlab_core::wire::{DeviceListEntry, DeviceView};

use crate::api::{self, ApiFailure, DeviceCredentials};
use crate::client::{ApiClient, ApiResponse, random_key};
use crate::components::FailureView;
use crate::dpop;
use crate::logins::{PageLogins, notify};
use crate::server_clock::{ServerClock, format_time};
use crate::storage;

pub(crate) const DEVICE_ID_KEY: &str = "tokenlab.device_id";
pub(crate) const TOKEN_KEY: &str = "tokenlab.device_token";
/// `bound` while this page is signed in as a bound device (its key is in IndexedDB, not here).
pub(crate) const DEVICE_MODE_KEY: &str = "tokenlab.device_mode";

#[derive(Debug, Clone, PartialEq)]
enum Panel {
    Checking,
    LoggedOut { refusal: Option<ApiFailure> },
    LoggedIn { device: DeviceView, idle_expires_at: OffsetDateTime, note: Option<Note> },
}

#[derive(Debug, Clone, PartialEq)]
enum Note {
    Ok,
    Renewed { rotated: bool },
    Refused(ApiFailure),
}

fn fresh_device_id() -> String {
    let key = random_key();
    format!("dev-{}", key.get(..16).unwrap_or(&key))
}

#[component]
pub fn DevicePanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let clock = expect_context::<ServerClock>();
    let device_id = RwSignal::new(String::new());
    let token = RwSignal::new(None::<String>);
    let panel = RwSignal::new(Panel::Checking);
    let mode = RwSignal::new(DeviceMode::Hardened);
    let username = RwSignal::new("alice".to_owned());
    let password = RwSignal::new(String::new());
    let devices = RwSignal::new(Vec::<DeviceListEntry>::new());
    let busy = RwSignal::new(false);
    let logins = use_context::<PageLogins>();
    // A bound device's key thumbprint (the key itself stays in IndexedDB, out of every script).
    let bound_jkt = RwSignal::new(None::<String>);

    let forget_token = move || {
        storage::remove(TOKEN_KEY);
        storage::remove(DEVICE_MODE_KEY);
        token.set(None);
        bound_jkt.set(None);
    };

    // Every protected call carries the device id and token (a bound device: a proof by its key);
    // a rotated token replaces the stored one.
    let credentials = move || {
        crate::logins::device_credentials().unwrap_or_else(|| DeviceCredentials {
            id: device_id.get_untracked(),
            token: token.get_untracked().unwrap_or_default(),
            key: None,
        })
    };
    let keep_rotated = move |response: Option<&ApiResponse>| {
        if let Some(rotated) = response.and_then(|r| r.header("x-device-token")) {
            storage::set(TOKEN_KEY, rotated);
            token.set(Some(rotated.to_owned()));
        }
    };

    let load_devices = move || {
        spawn_local(async move {
            let result = api::devices(&client, &credentials()).await;
            keep_rotated(api::raw(&result));
            if let Ok(list) = result {
                devices.set(list.into_body().devices);
            }
        });
    };

    // A refusal that means "this device must log in again" drops the panel to logged out.
    let handle_refusal = move |failure: ApiFailure| {
        if failure.reason() == Some(Reason::DeviceTokenMismatch) {
            panel.update(|p| {
                if let Panel::LoggedIn { note, .. } = p {
                    *note = Some(Note::Refused(failure.clone()));
                }
            });
        } else {
            forget_token();
            devices.set(Vec::new());
            panel.set(Panel::LoggedOut { refusal: Some(failure) });
        }
    };

    let call_me = move |explicit: bool| {
        spawn_local(async move {
            busy.set(true);
            let result = api::device_me(&client, &credentials()).await;
            keep_rotated(api::raw(&result));
            busy.set(false);
            match result {
                Ok(me) => {
                    let rotated = me.header("x-device-token").is_some();
                    let me = me.into_body();
                    let note = if me.renewed {
                        Some(Note::Renewed { rotated })
                    } else {
                        explicit.then_some(Note::Ok)
                    };
                    panel.set(Panel::LoggedIn {
                        device: me.device,
                        idle_expires_at: me.session.idle_expires_at,
                        note,
                    });
                    load_devices();
                }
                Err(ApiFailure::NoAnswer(_)) => {}
                Err(failure) => {
                    if explicit {
                        handle_refusal(failure);
                    } else {
                        forget_token();
                        panel.set(Panel::LoggedOut { refusal: None });
                    }
                }
            }
        });
    };

    Effect::new(move |_| {
        let id = storage::get(DEVICE_ID_KEY).unwrap_or_else(|| {
            let id = fresh_device_id();
            storage::set(DEVICE_ID_KEY, &id);
            id
        });
        device_id.set(id);
        if storage::get(DEVICE_MODE_KEY).as_deref() == Some(DeviceMode::Bound.as_str()) {
            // The key survives a reload in IndexedDB; the page only ever holds a handle on it.
            spawn_local(async move {
                match dpop::stored_key().await {
                    Ok(Some(key)) => {
                        bound_jkt.set(Some(key.jkt));
                        call_me(false);
                    }
                    _ => {
                        forget_token();
                        panel.set(Panel::LoggedOut { refusal: None });
                    }
                }
            });
            return;
        }
        match storage::get(TOKEN_KEY) {
            Some(stored) => {
                token.set(Some(stored));
                call_me(false);
            }
            None => panel.set(Panel::LoggedOut { refusal: None }),
        }
    });

    let login = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let (name, pass) = (username.get_untracked(), password.get_untracked());
        let (id, chosen) = (device_id.get_untracked(), mode.get_untracked());
        spawn_local(async move {
            let (result, key) = if chosen == DeviceMode::Bound {
                match dpop::page_key().await {
                    Ok(key) => {
                        let login = api::device_login_bound(&client, &name, &pass, &id, &key);
                        (login.await, Some(key))
                    }
                    Err(problem) => (Err(ApiFailure::NoAnswer(problem)), None),
                }
            } else {
                (api::device_login(&client, &name, &pass, &id, chosen).await, None)
            };
            busy.set(false);
            let login = match result {
                Ok(login) => login.into_body(),
                Err(failure @ ApiFailure::NoAnswer(_))
                    if key.is_none() && chosen == DeviceMode::Bound =>
                {
                    panel.set(Panel::LoggedOut { refusal: Some(failure) });
                    return;
                }
                Err(ApiFailure::NoAnswer(_)) => return,
                Err(failure) => {
                    panel.set(Panel::LoggedOut { refusal: Some(failure) });
                    return;
                }
            };
            storage::set(DEVICE_MODE_KEY, chosen.as_str());
            match (login.device_token, key) {
                (Some(issued), _) => {
                    storage::set(TOKEN_KEY, &issued);
                    token.set(Some(issued));
                }
                (None, Some(key)) => {
                    storage::remove(TOKEN_KEY);
                    token.set(None);
                    bound_jkt.set(Some(key.jkt));
                }
                (None, None) => {}
            }
            password.set(String::new());
            panel.set(Panel::LoggedIn {
                device: login.device,
                idle_expires_at: login.session.idle_expires_at,
                note: None,
            });
            load_devices();
            notify(logins);
        });
    };

    let become_another = move |_| {
        let id = fresh_device_id();
        storage::set(DEVICE_ID_KEY, &id);
        device_id.set(id);
        forget_token();
        devices.set(Vec::new());
        panel.set(Panel::LoggedOut { refusal: None });
        // Another device has another key.
        spawn_local(async move {
            let _ = dpop::forget_key().await;
        });
    };

    let sign_out = move |everywhere: bool| {
        spawn_local(async move {
            let result = if everywhere {
                api::device_logout_all(&client, &credentials()).await
            } else {
                api::device_logout(&client, &credentials()).await
            };
            keep_rotated(api::raw(&result));
            forget_token();
            devices.set(Vec::new());
            panel.set(Panel::LoggedOut { refusal: None });
            notify(logins);
        });
    };

    let revoke = move |id: i64| {
        spawn_local(async move {
            let result = api::revoke_device(&client, &credentials(), id).await;
            keep_rotated(api::raw(&result));
            match result {
                Ok(_) => {}
                Err(ApiFailure::NoAnswer(_)) => return,
                Err(failure) => {
                    handle_refusal(failure);
                    return;
                }
            }
            notify(logins);
            // Revoking this very device: the next call proves it is gone.
            let current = devices.get_untracked().iter().any(|d| d.device.id == id && d.current);
            if current {
                call_me(true);
            } else {
                load_devices();
            }
        });
    };

    view! {
        <section class="panel scheme" data-testid="device-panel" aria-labelledby="device-title">
            <h2 id="device-title">"Device token"</h2>
            <p class="muted">
                "The article's recommended scheme: at login the client sends its device id; the server keeps a token "
                "for the device in the database and in a server session, and checks the token on every request. "
                "When the session times out, the server finds the token in the database and re-attaches it — no new login."
            </p>
            <dl class="facts">
                <dt>"This device's id"</dt>
                <dd><code data-testid="device-id">{move || device_id.get()}</code></dd>
                <dt>"Token kept by this page"</dt>
                <dd><code data-testid="device-token">{move || token.get().map_or_else(|| "none".to_owned(), |t| mask_secret(&t))}</code></dd>
                {move || bound_jkt.get().map(|jkt| view! {
                    <dt>"Key (DPoP)"</dt>
                    <dd>"a non-extractable P-256 key in this browser; thumbprint "
                        <code data-testid="device-key-jkt">{jkt}</code></dd>
                })}
            </dl>
            <div class="actions">
                <button on:click=become_another>"Become another device"</button>
            </div>
            {move || match panel.get() {
                Panel::Checking => view! { <p class="muted">"Checking for a device token…"</p> }.into_any(),
                Panel::LoggedOut { refusal } => view! {
                    <form on:submit=login data-testid="device-login">
                        <label>"Username" <input name="username" prop:value=username on:input=move |ev| username.set(event_target_value(&ev))/></label>
                        <label>"Password" <input name="password" type="password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev))/></label>
                        <fieldset>
                            <legend>"Mode"</legend>
                            <label class="inline">
                                <input type="radio" name="device-mode" prop:checked=move || mode.get() == DeviceMode::AsWritten on:change=move |_| mode.set(DeviceMode::AsWritten)/>
                                "as in the article — insecure"
                            </label>
                            <label class="inline">
                                <input type="radio" name="device-mode" prop:checked=move || mode.get() == DeviceMode::Hardened on:change=move |_| mode.set(DeviceMode::Hardened)/>
                                "hardened"
                            </label>
                            <label class="inline">
                                <input type="radio" name="device-mode" prop:checked=move || mode.get() == DeviceMode::Bound on:change=move |_| mode.set(DeviceMode::Bound)/>
                                "bound to this browser's key (DPoP)"
                            </label>
                        </fieldset>
                        {move || (mode.get() == DeviceMode::AsWritten).then(|| view! {
                            <p class="notice warning" data-testid="as-written-warning">
                                "As written, the token is the device id itself, stored as is and valid forever. A device id is "
                                "neither secret nor revocable: anyone who learns it is you, on every device, for good."
                            </p>
                        })}
                        {move || (mode.get() == DeviceMode::Hardened).then(|| view! {
                            <p class="muted">
                                "Hardened: a random 256-bit secret bound to this user and device, stored only as a hash, "
                                "valid 60 days at most, replaced at every re-attach; an old secret used again revokes the device."
                            </p>
                        })}
                        {move || (mode.get() == DeviceMode::Bound).then(|| view! {
                            <p class="muted" data-testid="bound-explainer">
                                "Bound: no token at all. This browser makes a P-256 key that no script can export, "
                                "registers its public half at login, and signs a fresh proof of every request "
                                "(method, URL, time, a one-use id). A copied cookie or copied headers prove nothing."
                            </p>
                        })}
                        <button type="submit" disabled=move || busy.get()>"Log in on this device"</button>
                    </form>
                    {refusal.map(|failure| view! { <FailureView failure/> })}
                }.into_any(),
                Panel::LoggedIn { device, idle_expires_at, note } => view! {
                    <dl class="facts">
                        <dt>"Mode"</dt>
                        <dd data-testid="device-mode">{match device.mode {
                            DeviceMode::AsWritten => "as in the article — insecure",
                            DeviceMode::Hardened => "hardened",
                            DeviceMode::Bound => "bound to this browser's key",
                        }}</dd>
                        <dt>"Server session idle expiry"</dt>
                        <dd><span data-testid="device-idle-left">{clock.countdown(idle_expires_at)}</span>
                            <span class="muted">" at " {format_time(idle_expires_at)}</span></dd>
                        <dt>"Token expiry"</dt>
                        <dd>{match device.token_expires_at {
                            Some(at) => view! { <span>{clock.countdown(at)}</span><span class="muted">" at " {format_time(at)}</span> }.into_any(),
                            None => view! { <span class="bad-text">"never (as written)"</span> }.into_any(),
                        }}</dd>
                    </dl>
                    <div class="actions">
                        <button on:click=move |_| call_me(true) disabled=move || busy.get()>"Call a protected API"</button>
                        <button on:click=move |_| sign_out(false)>"Log out"</button>
                        <button on:click=move |_| sign_out(true)>"Log out everywhere"</button>
                    </div>
                    {note.map(|note| match note {
                        Note::Ok => view! { <p class="success" data-testid="device-call-result">"200 OK — token matched the session's copy"</p> }.into_any(),
                        Note::Renewed { rotated } => view! {
                            <p class="notice renewed" data-testid="device-renewed">
                                "Server session had expired — re-attached from the database, no login needed."
                                {rotated.then_some(" The secret was rotated; this page stored the new one.")}
                            </p>
                        }.into_any(),
                        Note::Refused(failure) => view! { <FailureView failure/> }.into_any(),
                    })}
                    <h3>"Devices"</h3>
                    <table class="devices" data-testid="device-list">
                        <thead><tr><th>"device"</th><th>"mode"</th><th>"created"</th><th>"last seen"</th><th></th></tr></thead>
                        <tbody>
                            {move || devices.get().into_iter().map(|entry| {
                                let d = entry.device;
                                let id = d.id;
                                view! {
                                    <tr class:revoked=d.revoked data-device=d.id>
                                        <td>{d.name.chars().take(40).collect::<String>()} {entry.current.then_some(" (this device)")}</td>
                                        <td>{d.mode.as_str().replace('_', " ")}</td>
                                        <td>{format_time(d.created_at)}</td>
                                        <td>{format_time(d.last_seen_at)}</td>
                                        <td>{if d.revoked {
                                            view! { <span class="muted">"revoked"</span> }.into_any()
                                        } else {
                                            view! { <button on:click=move |_| revoke(id)>"Revoke"</button> }.into_any()
                                        }}</td>
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
