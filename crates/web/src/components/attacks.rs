//! The attack lab: each weakness of the article's advice, exploited with one click, and the rule
//! that stops it. The attacker is a second client: its requests leave this browser's cookies
//! behind (and are marked as the attacker's in the timeline).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use leptos::prelude::*;
use serde_json::{Value, json};
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::wire::{AccessClaims, InspectorQuery};

use crate::api::{self, Credential};
use crate::components::ladder::LADDER;
use crate::lab::{
    Lab, ReasonRule, StepFn, StepFuture, StepState, answered, attacker_page, boxed, describe,
    expect_reason, expect_status, plural,
};

pub(crate) struct Attack {
    pub key: &'static str,
    pub title: &'static str,
    pub story: &'static str,
    pub expected: &'static str,
    /// The refusals that stop it, explained from `tokenlab_core::reason`. Empty: nothing does.
    pub stopped_by: &'static [Reason],
    /// What the card says when nothing stops it.
    pub nothing_stops_it: &'static str,
    pub run: StepFn,
}

const ATTACKS: &[Attack] = &[
    Attack {
        key: "device-as-written",
        title: "Stolen device id — as written",
        story: "The attacker learned the victim's device id (apps log it, analytics collect it). As the article writes the scheme, the device id is the token.",
        expected: "The attacker gets in. Nothing on the server can tell them apart from the victim, and nothing expires.",
        stopped_by: &[],
        nothing_stops_it: "Nothing stops it: this is the weakness of the scheme as the article writes it. Compare the hardened card.",
        run: device_as_written,
    },
    Attack {
        key: "device-hardened",
        title: "Stolen device id — hardened",
        story: "The same attacker, against a device logged in with the hardened mode: a random 256-bit secret, stored hashed, replaced at every re-attach.",
        expected: "Refused: the device id alone matches no live device.",
        stopped_by: &[Reason::DeviceUnknown],
        nothing_stops_it: "",
        run: device_hardened,
    },
    Attack {
        key: "refresh-replay",
        title: "Stolen refresh token, replayed after the victim refreshed",
        story: "The attacker copied the victim's refresh token. The victim refreshes first; later the attacker presents the copy.",
        expected: "The server sees a spent token come back, revokes the whole family, and both parties must log in again.",
        stopped_by: &[Reason::RefreshReused, Reason::RefreshRevoked],
        nothing_stops_it: "",
        run: refresh_replay,
    },
    Attack {
        key: "fixation",
        title: "Session fixation",
        story: "The attacker plants a session id of their choosing in the victim's browser (a sibling subdomain or a script can set cookies), hoping the victim logs in under it.",
        expected: "The planted id is never adopted: it is unknown to the server, and logging in issues a fresh id that replaces it.",
        stopped_by: &[Reason::NotLoggedIn],
        nothing_stops_it: "",
        run: fixation,
    },
    Attack {
        key: "cross-site",
        title: "Cross-site request",
        story: "A page of another site (below, in a sandboxed frame) submits an order form to this server, hoping the browser adds the victim's cookies.",
        expected: "Refused with cross_site_request: the frame shows the server's answer, the server's count of cross-site refusals goes up by one, and no order is created.",
        stopped_by: &[Reason::CrossSiteRequest],
        nothing_stops_it: "",
        run: cross_site,
    },
    Attack {
        key: "forged-jwt",
        title: "Forged access tokens",
        story: "The attacker edits a real access token: the signature algorithm set to none, the expiry pushed ten years out, and a signing key id of their own.",
        expected: "Each is refused with token_invalid: only the server's own keys sign, only EdDSA is accepted, and any change breaks the signature.",
        stopped_by: &[Reason::TokenInvalid],
        nothing_stops_it: "",
        run: forged_jwt,
    },
    Attack {
        key: "double-submit",
        title: "Double submit on a slow network",
        story: "The victim presses Submit twice while the network is slow (the server holds each request 1.5 s); both copies carry the same one-time form token.",
        expected: "Exactly one order; the second copy is told which order the first created.",
        stopped_by: &[Reason::DuplicateSubmit],
        nothing_stops_it: "",
        run: double_submit,
    },
];

fn device_as_written(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.device_login("victim-phone-0001", DeviceMode::AsWritten).await?;
        let response = lab.device_me_as_attacker("victim-phone-0001").await;
        let who = &expect_status(&response, 200)?.user.username;
        Ok(format!("attacker got in: 200, signed in as {who} — the article's scheme as written"))
    })
}

fn device_hardened(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.device_login("victim-laptop-0002", DeviceMode::Hardened).await?;
        let response = lab.device_me_as_attacker("victim-laptop-0002").await;
        expect_reason(&response, Reason::DeviceUnknown)?;
        Ok("blocked: 401 device_unknown".to_owned())
    })
}

fn refresh_replay(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.password_grant().await?;
        let stolen = lab.recall(|m| m.refresh_token.clone());
        let victim = lab.refresh_with(&stolen).await;
        lab.keep_tokens(expect_status(&victim, 200)?)?;
        // Past the 10 s in which a client that lost the response may retry with the same token.
        lab.advance_clock(11).await?;
        let replay = lab.refresh_as_attacker(&stolen).await;
        expect_reason(&replay, Reason::RefreshReused)?;
        let current = lab.recall(|m| m.refresh_token.clone());
        let victim_again = lab.refresh_with(&current).await;
        expect_reason(&victim_again, Reason::RefreshRevoked)?;
        Ok("blocked: attacker 400 refresh_reused, then the victim 400 refresh_revoked — both must log in again".to_owned())
    })
}

const PLANTED_SESSION_ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

fn fixation(lab: Lab) -> StepFuture {
    boxed(async move {
        // Script cannot overwrite an HttpOnly cookie, so the attack starts from a logged-out
        // browser, which is where a planted cookie waits for its victim.
        // Whatever it answers, the browser holds no session afterwards.
        let _ = answered(api::session_logout(&lab.client).await)?;
        set_document_cookie(&format!("tl_session={PLANTED_SESSION_ID}; path=/"))?;
        let probe = api::session_me(&lab.client).await;
        expect_reason(&probe, Reason::NotLoggedIn)?;
        let login = lab.session_login().await;
        let issued = &expect_status(&login, 200)?.session.id_masked;
        if issued.starts_with(&PLANTED_SESSION_ID[..4]) {
            return Err(format!("the server kept the planted id: {issued}"));
        }
        if document_cookie()?.contains(PLANTED_SESSION_ID) {
            return Err("the planted cookie survived the login".to_owned());
        }
        Ok(format!(
            "blocked: the planted id answered 401 not_logged_in; the login issued {issued} and the planted cookie is gone"
        ))
    })
}

/// The server's count of cross-site refusals (demo profile). The refusal itself is delivered to
/// the attacker's frame, which this page may not read: that is the same-origin policy at work.
async fn cross_site_refusals(lab: Lab) -> Result<i64, String> {
    let state = api::server_state(&lab.client, &InspectorQuery::default()).await;
    Ok(expect_status(&state, 200)?.cross_site_refusals)
}

fn cross_site(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_status(&lab.session_login().await, 200)?;
        let orders_before = lab.order_count().await?;
        let refusals_before = cross_site_refusals(lab).await?;
        let origin = page_origin()?;
        let answered = lab.attacker_frame.open(attacker_page(&origin));
        answered.await.map_err(|_| "the attacker's frame never loaded".to_owned())?;
        let refusals_after = cross_site_refusals(lab).await?;
        if refusals_after != refusals_before + 1 {
            return Err(format!(
                "the server did not refuse the attacker's request as cross-site \
                 (refusals {refusals_before} → {refusals_after})"
            ));
        }
        let orders_after = lab.order_count().await?;
        if orders_after != orders_before {
            return Err(format!(
                "the cross-site form created an order: {orders_before} → {orders_after}"
            ));
        }
        Ok(format!(
            "blocked: the server refused it as cross_site_request (refusals {refusals_before} → {refusals_after}); still {}",
            plural(orders_after as i64, "order", "orders")
        ))
    })
}

fn forged_jwt(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.password_grant().await?;
        let real = lab.recall(|m| m.access_token.clone());
        let forgeries = forge(&real)?;
        let mut outcomes = Vec::new();
        for (what, caught_by, token) in forgeries {
            let response = api::jwt_me(&lab.client.as_attacker(), &token).await;
            let refused = expect_reason(&response, Reason::TokenInvalid)
                .map_err(|e| format!("{what}: {e}"))?;
            let message = refused.message();
            // Each forgery must be caught by the check it targets, not by a later one.
            if !message.contains(caught_by) {
                return Err(format!("{what}: refused, but for another reason: {message}"));
            }
            outcomes.push(format!("{what} → {} ({message})", describe(&response)));
        }
        Ok(format!("blocked: {}", outcomes.join("; ")))
    })
}

/// Three edits of a real token: `alg: none` without a signature, a pushed-out expiry under the
/// original signature, and a key id the server never issued.
/// Each forgery with the words the server's refusal must contain to show which check caught it.
fn forge(token: &str) -> Result<Vec<(&'static str, &'static str, String)>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("the access token is not a JWT".to_owned());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    // The JOSE header has no wire type: the attacker edits it field by field, as JSON.
    let mut header_value: Value =
        serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let mut claims: AccessClaims =
        serde_json::from_slice(&decode(payload)?).map_err(|e| e.to_string())?;
    let encode = |json: Vec<u8>| URL_SAFE_NO_PAD.encode(json);

    let none = encode(json!({ "alg": "none", "typ": "JWT" }).to_string().into_bytes());
    let alg_none = format!("{none}.{payload}.");

    claims.exp += 10 * 365 * 86_400;
    let tampered_claims = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
    let tampered = format!("{header}.{}.{signature}", encode(tampered_claims));

    header_value["kid"] = json!("attackers-own-key");
    let unknown_kid =
        format!("{}.{payload}.{signature}", encode(header_value.to_string().into_bytes()));

    Ok(vec![
        // The JWT library knows no algorithm called "none": the header does not even parse.
        ("alg: none", "malformed", alg_none),
        ("exp pushed 10 years out", "Signature", tampered),
        ("unknown kid", "kid", unknown_kid),
    ])
}

fn double_submit(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_status(&lab.session_login().await, 200)?;
        let before = lab.order_count().await?;
        let form = api::form_token(&lab.client, &Credential::Cookies).await;
        let token = expect_status(&form, 200)?.form_token.clone();
        let (created, duplicate) = lab.submit_twice_slowly("matcha", token).await?;
        let after = lab.order_count().await?;
        if after != before + 1 {
            return Err(format!(
                "expected exactly one new order: {} before, {after} after",
                plural(before as i64, "order", "orders")
            ));
        }
        Ok(format!("blocked: {} and {duplicate}; exactly one new order", created.status()))
    })
}

#[cfg(feature = "hydrate")]
fn page_origin() -> Result<String, String> {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .ok_or_else(|| "no page origin".to_owned())
}

#[cfg(not(feature = "hydrate"))]
fn page_origin() -> Result<String, String> {
    Err("runs only in the browser".to_owned())
}

#[cfg(feature = "hydrate")]
fn document() -> Result<wasm_bindgen::JsValue, String> {
    js_sys::Reflect::get(&js_sys::global(), &"document".into()).map_err(|e| format!("{e:?}"))
}

#[cfg(feature = "hydrate")]
fn set_document_cookie(cookie: &str) -> Result<(), String> {
    js_sys::Reflect::set(&document()?, &"cookie".into(), &cookie.into())
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[cfg(feature = "hydrate")]
fn document_cookie() -> Result<String, String> {
    js_sys::Reflect::get(&document()?, &"cookie".into())
        .map(|v| v.as_string().unwrap_or_default())
        .map_err(|e| format!("{e:?}"))
}

#[cfg(not(feature = "hydrate"))]
fn set_document_cookie(_cookie: &str) -> Result<(), String> {
    Err("runs only in the browser".to_owned())
}

#[cfg(not(feature = "hydrate"))]
fn document_cookie() -> Result<String, String> {
    Err("runs only in the browser".to_owned())
}

#[component]
pub fn AttackLab() -> impl IntoView {
    let lab = Lab::from_context();
    provide_context(lab);
    let resetting = RwSignal::new(StepState::NotRun);
    view! {
        <section class="attack-lab" aria-labelledby="attacks-title">
            <h2 id="attacks-title">"Attack lab"</h2>
            <p>
                "Each card attacks the live server the way a real attacker would, then checks what happened. "
                "The attacker's requests carry none of this browser's cookies; the timeline marks them."
            </p>
            <p>
                <button class="reset-demo" disabled=move || lab.busy.get() on:click=move |_| {
                    lab.run(async move {
                        resetting.set(StepState::Running);
                        resetting.set(StepState::from_result(lab.reset().await));
                    });
                }>"Reset demo"</button>
                " " <span class=move || format!("step-result {}", resetting.get().css())>
                    {move || resetting.get().text()}
                </span>
            </p>
            <div class="attacks">
                {ATTACKS.iter().map(|attack| view! { <AttackCard attack/> }).collect_view()}
            </div>
            <h2 id="ladder-title">"The same theft on every rung"</h2>
            <p>
                "Beyond the article: the device token as written, hardened, bound to a key this browser holds "
                "(DPoP, a WebCrypto key no script can export), and access + refresh tokens bound to that key. "
                "Each card signs the victim in on every rung and runs one attack against all of them."
            </p>
            <div class="attacks" data-testid="ladder">
                {LADDER.iter().map(|attack| view! { <AttackCard attack/> }).collect_view()}
            </div>
        </section>
    }
}

#[component]
fn AttackCard(attack: &'static Attack) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let state = RwSignal::new(StepState::NotRun);
    let run = move |_| {
        lab.run(async move {
            state.set(StepState::Running);
            state.set(StepState::from_result((attack.run)(lab).await));
        });
    };
    let frame = (attack.key == "cross-site").then(|| {
        let frame = lab.attacker_frame;
        view! {
            {move || frame.srcdoc.get().map(|page| view! {
                <iframe class="attacker-frame" title="the attacker's page" data-testid="attacker-frame"
                    sandbox="allow-forms allow-scripts" srcdoc=page on:load=move |_| frame.loaded()></iframe>
            })}
        }
    });
    view! {
        <article class="attack" data-testid=format!("attack-{}", attack.key) data-state=move || state.get().css()>
            <h3>{attack.title}</h3>
            <p>{attack.story}</p>
            <p class="expected"><strong>"Expected: "</strong>{attack.expected}</p>
            <button class="run-attack" disabled=move || lab.busy.get() on:click=run>
                "Run the attack"
            </button>
            <div class=move || format!("step-result {}", state.get().css()) data-testid="attack-result">
                {move || match state.get() {
                    StepState::Failed(s) => format!("✗ unexpected: {s}"),
                    other => other.text(),
                }}
            </div>
            {frame}
            <div class="stopped-by">
                {if attack.stopped_by.is_empty() {
                    view! { <p class="warning">{attack.nothing_stops_it}</p> }.into_any()
                } else {
                    view! {
                        <p><strong>"What stops it:"</strong></p>
                        {attack.stopped_by.iter().map(|reason| view! { <ReasonRule reason=*reason/> }).collect_view()}
                    }
                    .into_any()
                }}
            </div>
        </article>
    }
}
