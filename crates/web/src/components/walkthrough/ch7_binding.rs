//! Chapter 7, beyond the article: binding the token to the device. A key this browser holds and no
//! script can export signs a fresh proof of every request (DPoP, RFC 9449); the device token and
//! the access + refresh tokens are bound to it, and what a thief can copy stops working.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use leptos::prelude::*;
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::wire::AccessClaims;

use super::{Chapter, Extra, Step};
use crate::api::{self, Credential, DeviceCredentials, RefreshFrom, RefreshIn};
use crate::dpop;
use crate::lab::{
    Lab, PASSWORD, StepFuture, USERNAME, boxed, describe, expect_reason, expect_status,
};

pub(super) static CHAPTER: Chapter = Chapter {
    key: "binding",
    title: "7. Binding the token to the device",
    claims: "beyond the article",
    explain: &[
        "Every credential so far is a secret the client sends: whoever copies it is the user. As the article writes the device token, the secret is the device id itself; hardened, it is random, rotated, and its theft is noticed — after the fact, once thief and victim both use it.",
        "The next rung is a credential the client must prove it holds. At login this browser makes an ECDSA P-256 key with WebCrypto, marked non-extractable: the browser signs with it, keeps it in IndexedDB across reloads, and refuses every script — this page's or an injected one — its private half. The server stores only the public key's thumbprint (RFC 7638).",
        "Every request then carries a DPoP proof (RFC 9449): a small JWT signed by the key, naming the request's method and URL, the moment it was made, a one-use id, the hash of the access token sent beside it, and the server's latest nonce. The server checks the signature against the thumbprint, the request, a time window of 60 s back and 5 s ahead, and that the id was never seen — on any instance, since the replay store is shared.",
        "Bound this way, the article's device token needs no token at all, and access + refresh tokens name the key in their cnf claim: sent as Bearer, or refreshed without a proof by the key, they are refused. What binding does not stop is a script running in the page while it is open: it cannot carry the key away, but it can ask the browser to sign.",
        "The last rung needs no code in the page: Device Bound Session Credentials, a W3C draft Chrome ships. The session-id scheme's login invites the browser to bind the session to a key of its own; over https, Chrome registers one, and the session then also needs a ten-minute cookie that only a refresh signed by that key renews. A copied session cookie is refused, and a copy of both lasts ten minutes at most.",
    ],
    look_for: "In the timeline, the DPoP header on every bound call and the DPoP-Nonce the server answers with; no X-Device-Token anywhere; the refusals token_bound and dpop_proof_replayed. The table below the steps sums up the attack lab's five thefts on every rung.",
    steps: &[
        Step {
            label: "Log in as a bound device: this browser registers its key, no token is issued",
            run: bound_login,
        },
        Step { label: "Call with a fresh proof by the key", run: bound_call },
        Step { label: "A thief replays that call, proof and all", run: replay_call },
        Step { label: "Log in with access + refresh tokens bound to the key", run: bound_tokens },
        Step { label: "Send the bound access token as a bearer token", run: as_bearer },
        Step { label: "Send it as a DPoP token, with a proof", run: as_dpop },
        Step { label: "Refresh without a proof by the key, then with one", run: bound_refresh },
        Step {
            label: "Log in with the session id: the answer invites the browser to bind the session (DBSC)",
            run: dbsc_invitation,
        },
    ],
    extras: &[Extra::BindingLadder, Extra::AttackLabLink],
};

const DEVICE_ID: &str = "my-bound-phone";
const DEVICE_ME: &str = "/api/device/me";

fn bound_device(key: dpop::ProofKey) -> DeviceCredentials {
    DeviceCredentials { id: DEVICE_ID.to_owned(), token: String::new(), key: Some(key) }
}

fn bound_login(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = dpop::page_key().await?;
        let login = api::device_login_bound(&lab.client, USERNAME, PASSWORD, DEVICE_ID, &key).await;
        let login = expect_status(&login, 200)?;
        if login.device.mode != DeviceMode::Bound || login.device_token.is_some() {
            return Err(format!("expected mode bound and no token, got {:?}", login.body));
        }
        Ok(format!(
            "200: device {DEVICE_ID} bound to key {}…, and no token to steal",
            key.jkt.get(..8).unwrap_or_default()
        ))
    })
}

fn bound_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = dpop::page_key().await?;
        let me = api::device_me(&lab.client, &bound_device(key)).await;
        let me = expect_status(&me, 200)?;
        Ok(format!("200: signed in as {}, proved by the key", me.user.username))
    })
}

fn replay_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = dpop::page_key().await?;
        let headers = [
            ("X-Device-Id", DEVICE_ID.to_owned()),
            ("DPoP", key.proof("GET", DEVICE_ME, None).await?),
        ];
        expect_status(&api::get_with_headers(&lab.client, DEVICE_ME, &headers).await, 200)?;
        let replayed = api::get_with_headers(&lab.client.as_attacker(), DEVICE_ME, &headers).await;
        expect_reason(&replayed, Reason::DpopProofReplayed)?;
        Ok("the victim's call 200; the thief's copy 401 dpop_proof_replayed".to_owned())
    })
}

fn bound_tokens(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = dpop::page_key().await?;
        let grant =
            api::password_grant_bound(&lab.client, USERNAME, PASSWORD, RefreshIn::Body, &key).await;
        let tokens = expect_status(&grant, 200)?;
        if tokens.token_type != "DPoP" {
            return Err(format!("expected token_type DPoP, got {}", tokens.token_type));
        }
        let jkt = claims(&tokens.access_token)?.cnf.map(|cnf| cnf.jkt);
        if jkt.as_deref() != Some(key.jkt.as_str()) {
            return Err(format!("the token's cnf.jkt is {jkt:?}, not the key's thumbprint"));
        }
        lab.keep_tokens(tokens)?;
        Ok(format!(
            "200: token_type DPoP; the access token's cnf.jkt is the key's thumbprint {}…",
            key.jkt.get(..8).unwrap_or_default()
        ))
    })
}

fn claims(token: &str) -> Result<AccessClaims, String> {
    let payload = token.split('.').nth(1).ok_or("the access token is not a JWT")?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

fn as_bearer(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        expect_reason(&lab.jwt_me(&access).await, Reason::TokenBound)?;
        Ok("401 token_bound: copied off the wire, the token alone is worthless".to_owned())
    })
}

fn as_dpop(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = dpop::page_key().await?;
        let token = lab.recall(|m| m.access_token.clone());
        let me = api::jwt_me_as(&lab.client, &Credential::Dpop { token, key }).await;
        let me = expect_status(&me, 200)?;
        if me.token.dpop_jkt.is_none() {
            return Err("the answer does not say the token is bound".to_owned());
        }
        Ok(format!("200: the holder of the key is {}", me.user.username))
    })
}

fn bound_refresh(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = dpop::page_key().await?;
        let refresh = lab.recall(|m| m.refresh_token.clone());
        let without = lab.refresh_with(&refresh).await;
        // The token endpoint answers in RFC 6749's shape: 400, whatever the reason's own status.
        let refused = without.as_ref().err().filter(|failure| {
            failure.reason() == Some(Reason::DpopProofInvalid) && failure.status() == Some(400)
        });
        if refused.is_none() {
            return Err(format!("expected 400 dpop_proof_invalid, got {}", describe(&without)));
        }
        let with = api::refresh_bound(&lab.client, RefreshFrom::Token(&refresh), &key).await;
        let tokens = expect_status(&with, 200)?;
        lab.keep_tokens(tokens)?;
        Ok(format!(
            "without a proof: 400 dpop_proof_invalid; with one: 200, token_type {}",
            tokens.token_type
        ))
    })
}

fn dbsc_invitation(lab: Lab) -> StepFuture {
    boxed(async move {
        let login = lab.session_login().await;
        let login = expect_status(&login, 200)?;
        let invitation = login
            .header("secure-session-registration")
            .ok_or("the login's answer has no Secure-Session-Registration")?
            .to_owned();
        if !invitation.starts_with("(ES256);path=\"/api/session/dbsc/registration\"") {
            return Err(format!("unexpected invitation: {invitation}"));
        }
        let bound = if login.session.bound.is_some() { "bound" } else { "not bound" };
        Ok(format!(
            "Secure-Session-Registration: (ES256) with a challenge; this session is {bound} right after login — over https, Chrome registers its key in the background and the session panel shows it"
        ))
    })
}

/// The five thefts on every rung, as the attack lab's ladder runs them.
#[component]
pub(super) fn LadderTable() -> impl IntoView {
    const ROWS: [(&str, [&str; 4]); 5] = [
        (
            "(a) cookie and headers copied to another browser",
            [
                "gets in",
                "gets in (theft seen at the next rotation)",
                "device_credentials_missing",
                "token_bound",
            ],
        ),
        (
            "(b) a captured proof replayed, here or on another instance",
            [
                "— (the token replays)",
                "— (the token replays)",
                "dpop_proof_replayed",
                "dpop_proof_replayed",
            ],
        ),
        (
            "(c) proofs made in advance by an injected script, used after the page is gone",
            [
                "gets in (the script copied the token)",
                "gets in (the script copied the token)",
                "use_dpop_nonce",
                "use_dpop_nonce",
            ],
        ),
        (
            "(d) an injected script using the live key while the page is open",
            ["gets in", "gets in", "gets in", "gets in"],
        ),
        (
            "(e) the client's clock skewed (120 s late, 30 s ahead)",
            ["not affected", "not affected", "dpop_proof_invalid", "dpop_proof_invalid"],
        ),
    ];
    view! {
        <table class="ladder" data-testid="binding-ladder">
            <thead>
                <tr><th>"attack"</th><th>"as written"</th><th>"hardened"</th><th>"bound device"</th><th>"bound tokens"</th></tr>
            </thead>
            <tbody>
                {ROWS.iter().map(|(attack, outcomes)| view! {
                    <tr>
                        <td>{*attack}</td>
                        {outcomes.iter().map(|outcome| view! { <td>{*outcome}</td> }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <p class="muted">"Each row is a card of the attack lab's ladder, which runs it against the live server and checks every cell."</p>
    }
}
