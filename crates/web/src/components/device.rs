//! Scheme 1 of the article: the device token, as written and hardened, side by side.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use tokenlab_core::display::mask_secret;

use crate::client::{ApiClient, ApiResponse, Method, Refusal, random_key};
use crate::components::RefusalView;
use crate::logins::{PageLogins, notify};
use crate::server_clock::{ServerClock, format_time};
use crate::storage;

pub(crate) const DEVICE_ID_KEY: &str = "tokenlab.device_id";
pub(crate) const TOKEN_KEY: &str = "tokenlab.device_token";

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct DeviceView {
    id: i64,
    name: String,
    mode: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    token_expires_at: Option<OffsetDateTime>,
    revoked: bool,
    #[serde(default)]
    current: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct SessionInfo {
    #[serde(with = "time::serde::rfc3339")]
    idle_expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Me {
    device: DeviceView,
    session: SessionInfo,
    renewed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Panel {
    Checking,
    LoggedOut { refusal: Option<Refusal> },
    LoggedIn { device: DeviceView, idle_expires_at: OffsetDateTime, note: Option<Note> },
}

#[derive(Debug, Clone, PartialEq)]
enum Note {
    Ok,
    Renewed { rotated: bool },
    Refused(Refusal),
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
    let mode = RwSignal::new("hardened".to_owned());
    let username = RwSignal::new("alice".to_owned());
    let password = RwSignal::new(String::new());
    let devices = RwSignal::new(Vec::<DeviceView>::new());
    let busy = RwSignal::new(false);
    let logins = use_context::<PageLogins>();

    let forget_token = move || {
        storage::remove(TOKEN_KEY);
        token.set(None);
    };

    // Every protected call carries the device id and token; a rotated token replaces the stored one.
    let device_call = move |method: Method, path: String| async move {
        let headers = vec![
            ("X-Device-Id", device_id.get_untracked()),
            ("X-Device-Token", token.get_untracked().unwrap_or_default()),
        ];
        let response = client.call(method, &path, None, &headers).await?;
        if let Some(rotated) = response.header("x-device-token") {
            storage::set(TOKEN_KEY, rotated);
            token.set(Some(rotated.to_owned()));
        }
        Ok::<ApiResponse, String>(response)
    };

    let load_devices = move || {
        spawn_local(async move {
            if let Ok(r) = device_call(Method::Get, "/api/device/devices".into()).await
                && r.ok()
                && let Ok(list) =
                    serde_json::from_value::<Vec<DeviceView>>(r.body["devices"].clone())
            {
                devices.set(list);
            }
        });
    };

    // A refusal that means "this device must log in again" drops the panel to logged out.
    let handle_refusal = move |refusal: Refusal| {
        if refusal.code == "device_token_mismatch" {
            panel.update(|p| {
                if let Panel::LoggedIn { note, .. } = p {
                    *note = Some(Note::Refused(refusal.clone()));
                }
            });
        } else {
            forget_token();
            devices.set(Vec::new());
            panel.set(Panel::LoggedOut { refusal: Some(refusal) });
        }
    };

    let call_me = move |explicit: bool| {
        spawn_local(async move {
            busy.set(true);
            let result = device_call(Method::Get, "/api/device/me".into()).await;
            busy.set(false);
            let Ok(response) = result else { return };
            match (serde_json::from_value::<Me>(response.body.clone()), response.refusal()) {
                (Ok(me), None) => {
                    let rotated = response.header("x-device-token").is_some();
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
                (_, Some(refusal)) => {
                    if explicit {
                        handle_refusal(refusal);
                    } else {
                        forget_token();
                        panel.set(Panel::LoggedOut { refusal: None });
                    }
                }
                (Err(_), None) => {}
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
        let body = json!({
            "username": username.get_untracked(),
            "password": password.get_untracked(),
            "device_id": device_id.get_untracked(),
            "mode": mode.get_untracked(),
        });
        spawn_local(async move {
            let result = client.post("/api/device/login", body).await;
            busy.set(false);
            let Ok(response) = result else { return };
            if let Some(refusal) = response.refusal() {
                panel.set(Panel::LoggedOut { refusal: Some(refusal) });
                return;
            }
            let issued = response.body["device_token"].as_str().unwrap_or_default().to_owned();
            storage::set(TOKEN_KEY, &issued);
            token.set(Some(issued));
            password.set(String::new());
            if let (Ok(device), Ok(session)) = (
                serde_json::from_value::<DeviceView>(response.body["device"].clone()),
                serde_json::from_value::<SessionInfo>(response.body["session"].clone()),
            ) {
                panel.set(Panel::LoggedIn {
                    device,
                    idle_expires_at: session.idle_expires_at,
                    note: None,
                });
                load_devices();
            }
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
    };

    let sign_out = move |path: &'static str| {
        spawn_local(async move {
            let _ = device_call(Method::Post, path.into()).await;
            forget_token();
            devices.set(Vec::new());
            panel.set(Panel::LoggedOut { refusal: None });
            notify(logins);
        });
    };

    let revoke = move |id: i64| {
        spawn_local(async move {
            let Ok(response) =
                device_call(Method::Delete, format!("/api/device/devices/{id}")).await
            else {
                return;
            };
            if let Some(refusal) = response.refusal() {
                handle_refusal(refusal);
                return;
            }
            notify(logins);
            // Revoking this very device: the next call proves it is gone.
            let current = devices.get_untracked().iter().any(|d| d.id == id && d.current);
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
                                <input type="radio" name="device-mode" prop:checked=move || mode.get() == "as_written" on:change=move |_| mode.set("as_written".into())/>
                                "as in the article — insecure"
                            </label>
                            <label class="inline">
                                <input type="radio" name="device-mode" prop:checked=move || mode.get() == "hardened" on:change=move |_| mode.set("hardened".into())/>
                                "hardened"
                            </label>
                        </fieldset>
                        {move || (mode.get() == "as_written").then(|| view! {
                            <p class="notice warning" data-testid="as-written-warning">
                                "As written, the token is the device id itself, stored as is and valid forever. A device id is "
                                "neither secret nor revocable: anyone who learns it is you, on every device, for good."
                            </p>
                        })}
                        {move || (mode.get() == "hardened").then(|| view! {
                            <p class="muted">
                                "Hardened: a random 256-bit secret bound to this user and device, stored only as a hash, "
                                "valid 60 days at most, replaced at every re-attach; an old secret used again revokes the device."
                            </p>
                        })}
                        <button type="submit" disabled=move || busy.get()>"Log in on this device"</button>
                    </form>
                    {refusal.map(|refusal| view! { <RefusalView refusal/> })}
                }.into_any(),
                Panel::LoggedIn { device, idle_expires_at, note } => view! {
                    <dl class="facts">
                        <dt>"Mode"</dt>
                        <dd data-testid="device-mode">{if device.mode == "as_written" { "as in the article — insecure" } else { "hardened" }}</dd>
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
                        <button on:click=move |_| sign_out("/api/device/logout")>"Log out"</button>
                        <button on:click=move |_| sign_out("/api/device/logout-all")>"Log out everywhere"</button>
                    </div>
                    {note.map(|note| match note {
                        Note::Ok => view! { <p class="success" data-testid="device-call-result">"200 OK — token matched the session's copy"</p> }.into_any(),
                        Note::Renewed { rotated } => view! {
                            <p class="notice renewed" data-testid="device-renewed">
                                "Server session had expired — re-attached from the database, no login needed."
                                {rotated.then_some(" The secret was rotated; this page stored the new one.")}
                            </p>
                        }.into_any(),
                        Note::Refused(refusal) => view! { <RefusalView refusal/> }.into_any(),
                    })}
                    <h3>"Devices"</h3>
                    <table class="devices" data-testid="device-list">
                        <thead><tr><th>"device"</th><th>"mode"</th><th>"created"</th><th>"last seen"</th><th></th></tr></thead>
                        <tbody>
                            {move || devices.get().into_iter().map(|d| {
                                let id = d.id;
                                view! {
                                    <tr class:revoked=d.revoked data-device=d.id>
                                        <td>{d.name.chars().take(40).collect::<String>()} {d.current.then_some(" (this device)")}</td>
                                        <td>{d.mode.replace('_', " ")}</td>
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
