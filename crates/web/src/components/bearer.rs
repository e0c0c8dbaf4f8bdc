//! Article §4: a short-lived access token and a longer-lived refresh token.
//!
//! The access token lives in this page's memory only (a reload forgets it); the refresh token lives
//! in an HttpOnly cookie that only `/api/oauth` receives, so no script on the page can read either
//! from storage. A call that meets `token_expired` refreshes once — one refresh for any number of
//! calls waiting on it — and retries.
//!
//! With "bind to this device", the login carries a DPoP proof by this browser's non-extractable
//! key: both tokens are then bound to it, every call carries a fresh proof, and a copied token or
//! refresh cookie is worthless elsewhere (RFC 9449).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt as _;
use futures::future::{LocalBoxFuture, Shared};
use leptos::prelude::*;
use leptos::task::spawn_local;
use time::OffsetDateTime;
use tokenlab_core::Reason;
use tokenlab_core::wire::{AccessClaims, FamilyToken, TokenResponse};

use crate::api::{self, ApiFailure, Credential, RefreshFrom, RefreshIn};
use crate::client::{ApiClient, pause, random_key};
use crate::components::FailureView;
use crate::dpop;
use crate::logins::{PageLogins, notify};
use crate::server_clock::{ServerClock, format_time};
use crate::storage;
use crate::tabs::{TabChannel, with_lock};

const CHANNEL: &str = "tokenlab-bearer";
const REFRESH_LOCK: &str = "tokenlab-refresh";
/// A nonce (never a token) that changes at every refresh, so a tab can tell that another one
/// refreshed while it waited for the lock.
const REFRESH_STAMP: &str = "tokenlab.refresh-stamp";

#[derive(Debug, Clone, PartialEq)]
enum Panel {
    Checking,
    LoggedOut { refusal: Option<ApiFailure> },
    LoggedIn,
}

type Refresh = Shared<LocalBoxFuture<'static, Result<(), ApiFailure>>>;

/// The claims of a JWT, for display: the payload is only base64url, the signature is what matters.
fn decode_claims(token: &str) -> Option<AccessClaims> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The claims as the panel prints them: pretty JSON, claims in alphabetical order.
fn claims_text(claims: &AccessClaims) -> String {
    // Through a JSON value, whose map is ordered by key, rather than in declaration order.
    serde_json::to_value(claims)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_default()
}

/// A refusal of the refresh token itself: only a new login helps.
fn refresh_refused(failure: &ApiFailure) -> bool {
    matches!(
        failure.reason(),
        Some(
            Reason::RefreshInvalid
                | Reason::RefreshExpired
                | Reason::RefreshRevoked
                | Reason::RefreshReused
        )
    )
}

#[component]
pub fn BearerPanel() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let clock = expect_context::<ServerClock>();
    let panel = RwSignal::new(Panel::Checking);
    let logins = use_context::<PageLogins>();
    // The access token, in memory; on the lab page the sessions list can ask with it.
    let access = logins.map_or_else(|| RwSignal::new(None::<String>), |l| l.access_token);
    // Whether the tokens are bound to this browser's key (the switch, then the family says so).
    let bound = logins.map_or_else(|| RwSignal::new(false), |l| l.access_bound);
    let bind = RwSignal::new(false);
    let refresh_expires_at = RwSignal::new(None::<OffsetDateTime>);
    let family = RwSignal::new(Vec::<FamilyToken>::new());
    let note = RwSignal::new(None::<Result<String, ApiFailure>>);
    let username = RwSignal::new("alice".to_owned());
    let password = RwSignal::new(String::new());
    let in_flight: StoredValue<Option<Refresh>, LocalStorage> = StoredValue::new_local(None);

    let load_family = move || {
        spawn_local(async move {
            if let Ok(answer) = api::family(&client).await {
                let answer = answer.into_body();
                bound.set(answer.dpop_jkt.is_some());
                family.set(answer.tokens);
            }
        });
    };

    // Bumped whenever this tab holds a new access token, its own or one another tab sent.
    let generation = StoredValue::new(0_u64);
    // The refresh stamp as it was when this tab last got a token (or loaded): if it has changed
    // since, another tab has rotated the refresh token and this tab's copy of the story is old.
    let known_stamp = StoredValue::new(None::<String>);

    // Takes a token response: the access token into memory, the refresh expiry for the countdown.
    let accept = move |tokens: &TokenResponse| {
        bound.set(tokens.token_type == "DPoP");
        access.set(Some(tokens.access_token.clone()));
        let seconds = tokens.refresh_expires_in;
        refresh_expires_at.set(clock.now().map(|now| now + time::Duration::seconds(seconds)));
        generation.update_value(|g| *g += 1);
        known_stamp.set_value(storage::get(REFRESH_STAMP));
        panel.set(Panel::LoggedIn);
        load_family();
    };

    // Other tabs announce the access token they obtained; this one adopts it instead of refreshing.
    let channel: StoredValue<Option<TabChannel>, LocalStorage> = StoredValue::new_local(None);
    Effect::new(move |_| {
        known_stamp.set_value(storage::get(REFRESH_STAMP));
        channel.set_value(Some(TabChannel::open(CHANNEL, move |tokens| accept(&tokens))));
    });

    // One refresh at a time, in this tab (callers share one future) and across tabs (a Web Lock):
    // a tab that waited for the lock while another refreshed takes that tab's token rather than
    // rotating the refresh token a second time.
    // `seen`: the generation of the token that was found expired. If a newer one has arrived since
    // (another tab refreshed), there is nothing to refresh.
    let refresh = move |seen: u64| -> Refresh {
        if let Some(running) = in_flight.get_value() {
            return running;
        }
        let before = seen;
        let run = async move {
            let work = async move {
                if generation.get_value() != before {
                    return Ok(());
                }
                if storage::get(REFRESH_STAMP) != known_stamp.get_value() {
                    // Another tab refreshed since this one got its token; its message carrying the
                    // new access token is on the way (or was just handled).
                    for _ in 0..40 {
                        if generation.get_value() != before {
                            return Ok(());
                        }
                        pause(std::time::Duration::from_millis(50)).await;
                    }
                }
                let tokens = if bound.get_untracked() {
                    let key = dpop::page_key().await.map_err(ApiFailure::NoAnswer)?;
                    api::refresh_bound(&client, RefreshFrom::Cookie, &key).await?
                } else {
                    api::refresh(&client, RefreshFrom::Cookie).await?
                };
                storage::set(REFRESH_STAMP, &random_key());
                channel.with_value(|c| {
                    if let Some(c) = c {
                        c.post(&tokens.body)
                    }
                });
                accept(&tokens);
                Ok(())
            };
            let outcome = with_lock(REFRESH_LOCK, work.boxed_local()).await.unwrap_or_else(|| {
                Err(ApiFailure::NoAnswer("could not take the refresh lock".to_owned()))
            });
            in_flight.set_value(None);
            outcome
        }
        .boxed_local()
        .shared();
        in_flight.set_value(Some(run.clone()));
        run
    };

    let signed_out = move |refusal: Option<ApiFailure>| {
        access.set(None);
        bound.set(false);
        family.set(Vec::new());
        note.set(None);
        panel.set(Panel::LoggedOut { refusal });
    };

    let get_me = move || async move {
        let token = access.get_untracked().unwrap_or_default();
        if !bound.get_untracked() {
            return api::jwt_me(&client, &token).await;
        }
        let key = dpop::page_key().await.map_err(ApiFailure::NoAnswer)?;
        api::jwt_me_as(&client, &Credential::Dpop { token, key }).await
    };

    let call = move |_| {
        spawn_local(async move {
            let seen = generation.get_value();
            let mut result =
                if access.get_untracked().is_some() { Some(get_me().await) } else { None };
            // Expired, or revoked (its login was ended, or only this token was): the refresh token
            // says whether the login lives on. If its family was ended too, the refresh is refused
            // and the panel asks for a login.
            let expired = match &result {
                None => true,
                Some(Err(failure)) => {
                    matches!(failure.reason(), Some(Reason::TokenExpired | Reason::TokenRevoked))
                }
                Some(Ok(_)) => false,
            };
            if expired {
                if let Err(failure) = refresh(seen).await {
                    signed_out(Some(failure));
                    return;
                }
                result = Some(get_me().await);
            }
            note.set(match result {
                Some(Ok(me)) => Some(Ok(format!(
                    "200 OK — {} of token {} is {}{}",
                    if me.token.dpop_jkt.is_some() { "holder of the key" } else { "bearer" },
                    me.token.jti.get(..8).unwrap_or_default(),
                    me.user.username,
                    if expired { " (after a silent refresh)" } else { "" },
                ))),
                Some(Err(failure)) => Some(Err(failure)),
                None => None,
            });
        });
    };

    Effect::new(move |_| {
        // A reload forgets the access token; the refresh cookie tells whether a login is alive.
        spawn_local(async move {
            match api::family(&client).await {
                Ok(answer) if answer.revoked_reason.is_none() => {
                    let answer = answer.into_body();
                    bound.set(answer.dpop_jkt.is_some());
                    family.set(answer.tokens);
                    panel.set(Panel::LoggedIn);
                }
                _ => panel.set(Panel::LoggedOut { refusal: None }),
            }
        });
    });

    let login = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (name, pass) = (username.get_untracked(), password.get_untracked());
        let binding = bind.get_untracked();
        spawn_local(async move {
            let grant = if binding {
                match dpop::page_key().await {
                    Ok(key) => {
                        api::password_grant_bound(&client, &name, &pass, RefreshIn::Cookie, &key)
                            .await
                    }
                    Err(problem) => Err(ApiFailure::NoAnswer(problem)),
                }
            } else {
                api::password_grant(&client, &name, &pass, RefreshIn::Cookie).await
            };
            match grant {
                Ok(tokens) => {
                    password.set(String::new());
                    note.set(None);
                    channel.with_value(|c| {
                        if let Some(c) = c {
                            c.post(&tokens.body)
                        }
                    });
                    accept(&tokens);
                    notify(logins);
                }
                Err(ApiFailure::NoAnswer(problem)) if binding => {
                    signed_out(Some(ApiFailure::NoAnswer(problem)));
                }
                Err(ApiFailure::NoAnswer(_)) => {}
                Err(failure) => signed_out(Some(failure)),
            }
        });
    };

    let logout = move |_| {
        spawn_local(async move {
            let _ = api::revoke_refresh_cookie(&client).await;
            signed_out(None);
            notify(logins);
        });
    };

    let claims = move || access.get().as_deref().and_then(decode_claims);

    view! {
        <section class="panel scheme" data-testid="bearer-panel" aria-labelledby="bearer-title">
            <h2 id="bearer-title">"Access + refresh tokens"</h2>
            <p class="muted">
                "A short-lived access token proves who you are without a session lookup; a longer refresh token "
                "gets a new pair when it expires. The access token lives only in this page's memory, the refresh "
                "token in an HttpOnly cookie sent only to /api/oauth."
            </p>
            {move || match panel.get() {
                Panel::Checking => view! { <p class="muted">"Checking for a refresh token…"</p> }.into_any(),
                Panel::LoggedOut { refusal } => view! {
                    {refusal.clone().filter(refresh_refused).map(|_| view! {
                        <div class="notice expired" data-testid="bearer-login-again" role="alert">
                            <strong>"The refresh token can no longer be used — log in again."</strong>
                        </div>
                    })}
                    <form on:submit=login data-testid="bearer-login">
                        <label>"Username" <input name="username" prop:value=username on:input=move |ev| username.set(event_target_value(&ev))/></label>
                        <label>"Password" <input name="password" type="password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev))/></label>
                        <label class="inline">
                            <input type="checkbox" name="bind" data-testid="bearer-bind" prop:checked=bind on:change=move |ev| bind.set(event_target_checked(&ev))/>
                            "bind to this device (DPoP: the tokens only work with proofs by this browser's key)"
                        </label>
                        <button type="submit">"Log in (password grant)"</button>
                    </form>
                    {refusal.map(|failure| view! { <FailureView failure/> })}
                }.into_any(),
                Panel::LoggedIn => view! {
                    <dl class="facts">
                        <dt>"Access token"</dt>
                        <dd data-testid="bearer-access">{move || if access.get().is_some() { "in memory" } else { "none yet (fetched at the next call)" }}</dd>
                        <dt>"Bound to"</dt>
                        <dd data-testid="bearer-bound">{move || if bound.get() {
                            "this browser's key (DPoP): sent as Authorization: DPoP with a fresh proof"
                        } else {
                            "nothing: a bearer token, usable by whoever holds it"
                        }}</dd>
                        <dt>"Access expiry"</dt>
                        <dd data-testid="bearer-access-left">{move || match claims().and_then(|c| OffsetDateTime::from_unix_timestamp(c.exp).ok()) {
                            Some(exp) => format!("{} (at {})", clock.countdown(exp)(), format_time(exp)),
                            None => "—".to_owned(),
                        }}</dd>
                        <dt>"Refresh expiry"</dt>
                        <dd data-testid="bearer-refresh-left">{move || match refresh_expires_at.get() {
                            Some(at) => format!("{} (at {})", clock.countdown(at)(), format_time(at)),
                            None => "in the cookie".to_owned(),
                        }}</dd>
                    </dl>
                    <details open>
                        <summary>"Decoded claims (the signature key never leaves the server)"</summary>
                        <pre class="claims" data-testid="bearer-claims">{move || claims().as_ref().map(claims_text).unwrap_or_default()}</pre>
                    </details>
                    <div class="actions">
                        <button on:click=call>"Call a protected API"</button>
                        <button on:click=logout>"Log out (revoke)"</button>
                    </div>
                    {move || note.get().map(|n| match n {
                        Ok(text) => view! { <p class="success" data-testid="bearer-call-result">{text}</p> }.into_any(),
                        Err(failure) => view! { <FailureView failure/> }.into_any(),
                    })}
                    <h3>"Refresh-token family"</h3>
                    <ol class="family" data-testid="bearer-family">
                        {move || family.get().into_iter().map(|t| view! {
                            <li class=format!("token {}", t.state.as_str())>
                                <code>{t.hash_prefix}</code> " " {t.state.as_str()} {t.presented.then_some(" (held by this browser)")}
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any(),
            }}
        </section>
    }
}
