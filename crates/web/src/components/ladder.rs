//! The same theft on every rung of the binding ladder: the article's device token as written,
//! hardened, bound to a key (DPoP), and access + refresh tokens bound to that key. Each card signs
//! the victim in on every rung, runs one attack against all of them, and checks each outcome
//! against the lesson.
//!
//! The victim's key is this browser's non-extractable WebCrypto key. A script in the page can use
//! it (card d) but never copy it: that is the line between what binding stops and what it does not.

use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;

use crate::api::{self, ApiResult, RefreshIn};
use crate::client::ApiClient;
use crate::components::attacks::Attack;
use crate::dpop::{self, ProofKey};
use crate::lab::{Lab, PASSWORD, StepFuture, USERNAME, boxed, describe, expect_status};

const DEVICE_ME: &str = "/api/device/me";
const JWT_ME: &str = "/api/jwt/me";

pub(crate) const LADDER: &[Attack] = &[
    Attack {
        key: "ladder-copied-headers",
        title: "(a) Copied headers, replayed from another browser",
        story: "Malware or a leaky log copied what the victim's requests carry — on each rung — and replays it from another machine.",
        expected: "As written and hardened: the attacker gets in (the hardened secret rotates to the attacker; the victim's next use is then caught as theft, after the fact). Bound device: the id alone is device_credentials_missing. Bound tokens: the access token sent as Bearer is token_bound.",
        stopped_by: &[Reason::DeviceCredentialsMissing, Reason::TokenBound],
        nothing_stops_it: "",
        run: copied_headers,
    },
    Attack {
        key: "ladder-replayed-proof",
        title: "(b) A captured proof, replayed",
        story: "The attacker captured a whole request on a bound rung, DPoP proof included, and sends it again a moment later.",
        expected: "As written and hardened there is no proof: the token is the replayable part (card a). On both bound rungs the proof counts once: dpop_proof_replayed — on this instance or any other (the replay store is shared).",
        stopped_by: &[Reason::DpopProofReplayed],
        nothing_stops_it: "",
        run: replayed_proof,
    },
    Attack {
        key: "ladder-premade-proofs",
        title: "(c) Proofs made in advance by an injected script",
        story: "A script injected into the page signs proofs dated eleven minutes ahead, with the nonce of the moment, and sends them home. The page is closed; eleven minutes later the attacker uses them.",
        expected: "As written and hardened: the script simply copied the token, which still works. Bound: use_dpop_nonce — the nonce of a period that had not begun could not be known. Without server nonces these proofs would pass.",
        stopped_by: &[Reason::UseDpopNonce],
        nothing_stops_it: "",
        run: premade_proofs,
    },
    Attack {
        key: "ladder-live-key",
        title: "(d) An injected script using the live key",
        story: "A script injected into the open page asks the browser to sign fresh proofs with the victim's key and calls the API with them.",
        expected: "It gets in on every rung.",
        stopped_by: &[],
        nothing_stops_it: "Nothing stops it, on any rung: binding stops a credential from being carried away, not a page that is itself compromised. Only the page's own defences (Content-Security-Policy, no injected script) do.",
        run: live_key,
    },
    Attack {
        key: "ladder-clock-skew",
        title: "(e) The client's clock skewed",
        story: "The victim's own device has a wrong clock: proofs are dated 120 s late, 30 s ahead, or 30 s late.",
        expected: "As written and hardened: no client time is involved. Bound: 120 s late and 30 s ahead are dpop_proof_invalid (the window is 60 s back, 5 s ahead); 30 s late passes.",
        stopped_by: &[Reason::DpopProofInvalid],
        nothing_stops_it: "",
        run: clock_skew,
    },
];

/// The victim, signed in on every rung by this browser.
struct Victim {
    as_written: String,
    hardened: (String, String),
    bound_device: String,
    key: ProofKey,
    /// An access token bound to `key`.
    access_token: String,
}

async fn victim_on_every_rung(lab: Lab, card: &str) -> Result<Victim, String> {
    let as_written = format!("ladder-{card}-as-written");
    lab.device_login(&as_written, DeviceMode::AsWritten).await?;
    let hardened = format!("ladder-{card}-hardened");
    let login = lab.device_login(&hardened, DeviceMode::Hardened).await?;
    let secret = login.device_token.clone().unwrap_or_default();
    let key = dpop::page_key().await?;
    let bound_device = format!("ladder-{card}-bound");
    let bound = api::device_login_bound(&lab.client, USERNAME, PASSWORD, &bound_device, &key).await;
    expect_status(&bound, 200)?;
    let grant =
        api::password_grant_bound(&lab.client, USERNAME, PASSWORD, RefreshIn::Body, &key).await;
    let access_token = expect_status(&grant, 200)?.access_token.clone();
    Ok(Victim { as_written, hardened: (hardened, secret), bound_device, key, access_token })
}

/// One rung's line: what the server answered, checked against what the lesson expects (`None`:
/// the attack gets in).
fn rung<T>(name: &str, result: &ApiResult<T>, expected: Option<Reason>) -> Result<String, String> {
    let got = describe(result);
    let as_expected = match (expected, result) {
        (None, Ok(answer)) => answer.status() == 200,
        (Some(reason), Err(failure)) => {
            failure.reason() == Some(reason) && failure.status() == Some(reason.status())
        }
        _ => false,
    };
    let wanted = expected.map_or_else(|| "200".to_owned(), |r| format!("{} {r}", r.status()));
    if as_expected {
        Ok(format!("{name}: {got}"))
    } else {
        Err(format!("{name}: expected {wanted}, got {got}"))
    }
}

/// The first two rungs' lines: `client` sends what the victim's device headers hold, as written
/// (the id as the token) and hardened (the secret), and gets in.
async fn token_rungs(client: &ApiClient, victim: &Victim) -> Result<[String; 2], String> {
    let id = &victim.as_written;
    let (hardened, secret) = &victim.hardened;
    let as_written = api::get_with_headers(client, DEVICE_ME, &device_headers(id, id)).await;
    let hardened =
        api::get_with_headers(client, DEVICE_ME, &device_headers(hardened, secret)).await;
    Ok([rung("as written", &as_written, None)?, rung("hardened", &hardened, None)?])
}

fn device_headers(id: &str, token: &str) -> Vec<(&'static str, String)> {
    vec![("X-Device-Id", id.to_owned()), ("X-Device-Token", token.to_owned())]
}

fn bound_device_headers(id: &str, proof: String) -> Vec<(&'static str, String)> {
    vec![("X-Device-Id", id.to_owned()), ("DPoP", proof)]
}

fn bound_token_headers(token: &str, proof: String) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("DPoP {token}")), ("DPoP", proof)]
}

fn copied_headers(lab: Lab) -> StepFuture {
    boxed(async move {
        let victim = victim_on_every_rung(lab, "a").await?;
        let thief = lab.client.as_attacker();
        let [as_written, hardened] = token_rungs(&thief, &victim).await?;
        let lines = [
            as_written,
            hardened,
            rung(
                "bound device",
                &api::get_with_headers(
                    &thief,
                    DEVICE_ME,
                    &[("X-Device-Id", victim.bound_device.clone())],
                )
                .await,
                Some(Reason::DeviceCredentialsMissing),
            )?,
            rung(
                "bound tokens",
                &api::get_with_headers(
                    &thief,
                    JWT_ME,
                    &[("Authorization", format!("Bearer {}", victim.access_token))],
                )
                .await,
                Some(Reason::TokenBound),
            )?,
        ];
        Ok(lines.join("; "))
    })
}

fn replayed_proof(lab: Lab) -> StepFuture {
    boxed(async move {
        let victim = victim_on_every_rung(lab, "b").await?;
        let thief = lab.client.as_attacker();
        let key = &victim.key;
        let device =
            bound_device_headers(&victim.bound_device, key.proof("GET", DEVICE_ME, None).await?);
        expect_status(&api::get_with_headers(&lab.client, DEVICE_ME, &device).await, 200)?;
        let token = &victim.access_token;
        let tokens = bound_token_headers(token, key.proof("GET", JWT_ME, Some(token)).await?);
        expect_status(&api::get_with_headers(&lab.client, JWT_ME, &tokens).await, 200)?;
        let lines = [
            "as written, hardened: no proof to capture — the token itself replays (card a)"
                .to_owned(),
            rung(
                "bound device",
                &api::get_with_headers(&thief, DEVICE_ME, &device).await,
                Some(Reason::DpopProofReplayed),
            )?,
            rung(
                "bound tokens",
                &api::get_with_headers(&thief, JWT_ME, &tokens).await,
                Some(Reason::DpopProofReplayed),
            )?,
        ];
        Ok(lines.join("; "))
    })
}

/// How far ahead the script dates its proofs, and how long the attacker then waits: past the
/// nonce's five-to-ten-minute life.
const AHEAD_SECONDS: i64 = 11 * 60;

fn premade_proofs(lab: Lab) -> StepFuture {
    boxed(async move {
        let victim = victim_on_every_rung(lab, "c").await?;
        let (key, token) = (&victim.key, &victim.access_token);
        let later = dpop::server_now_seconds() + AHEAD_SECONDS;
        let nonce = dpop::latest_nonce();
        let device_proof = key.proof_at("GET", DEVICE_ME, None, later, nonce.as_deref()).await?;
        let token_proof = key.proof_at("GET", JWT_ME, Some(token), later, nonce.as_deref()).await?;
        // The page is gone; the attacker waits.
        lab.advance_clock(AHEAD_SECONDS).await?;
        let thief = lab.client.as_attacker();
        let device = bound_device_headers(&victim.bound_device, device_proof);
        let [as_written, hardened] = token_rungs(&thief, &victim).await?;
        let lines = [
            as_written,
            hardened,
            rung(
                "bound device",
                &api::get_with_headers(&thief, DEVICE_ME, &device).await,
                Some(Reason::UseDpopNonce),
            )?,
            rung(
                "bound tokens",
                &api::get_with_headers(&thief, JWT_ME, &bound_token_headers(token, token_proof))
                    .await,
                Some(Reason::UseDpopNonce),
            )?,
        ];
        Ok(lines.join("; "))
    })
}

fn live_key(lab: Lab) -> StepFuture {
    boxed(async move {
        let victim = victim_on_every_rung(lab, "d").await?;
        let (key, token) = (&victim.key, &victim.access_token);
        // The script sends from the page, but to its own ends: the attacker's requests.
        let script = lab.client.as_attacker();
        let device =
            bound_device_headers(&victim.bound_device, key.proof("GET", DEVICE_ME, None).await?);
        let tokens = bound_token_headers(token, key.proof("GET", JWT_ME, Some(token)).await?);
        let [as_written, hardened] = token_rungs(&script, &victim).await?;
        let lines = [
            as_written,
            hardened,
            rung("bound device", &api::get_with_headers(&script, DEVICE_ME, &device).await, None)?,
            rung("bound tokens", &api::get_with_headers(&script, JWT_ME, &tokens).await, None)?,
        ];
        Ok(format!("the script got in everywhere: {}", lines.join("; ")))
    })
}

fn clock_skew(lab: Lab) -> StepFuture {
    boxed(async move {
        let victim = victim_on_every_rung(lab, "e").await?;
        let (key, token) = (&victim.key, &victim.access_token);
        let mut lines =
            vec!["as written, hardened: a token carries no client time — not affected".to_owned()];
        for (skew, label, expected) in [
            (-120, "120 s late", Some(Reason::DpopProofInvalid)),
            (30, "30 s ahead", Some(Reason::DpopProofInvalid)),
            (-30, "30 s late", None),
        ] {
            let iat = dpop::server_now_seconds() + skew;
            let nonce = dpop::latest_nonce();
            let proof = key.proof_at("GET", DEVICE_ME, None, iat, nonce.as_deref()).await?;
            let device = bound_device_headers(&victim.bound_device, proof);
            let answer = api::get_with_headers(&lab.client, DEVICE_ME, &device).await;
            lines.push(rung(&format!("bound device, {label}"), &answer, expected)?);
            let proof = key.proof_at("GET", JWT_ME, Some(token), iat, nonce.as_deref()).await?;
            let answer =
                api::get_with_headers(&lab.client, JWT_ME, &bound_token_headers(token, proof))
                    .await;
            lines.push(rung(&format!("bound tokens, {label}"), &answer, expected)?);
        }
        Ok(lines.join("; "))
    })
}
