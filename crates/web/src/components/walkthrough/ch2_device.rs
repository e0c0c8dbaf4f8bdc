//! Chapter 2: the device token. It survives the server session's timeout by being looked up in
//! the database; as the article writes it (the device id is the token) anyone who learns the id
//! is the user, and the hardened mode shows the fix.

use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;

use super::{Chapter, Step};
use crate::api::{self, DeviceCredentials};
use crate::lab::{Lab, StepFuture, boxed, expect_reason, expect_status, plural, statements};

pub(super) static CHAPTER: Chapter = Chapter {
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
        Step { label: "Log in as written: the device id is the token", run: login_as_written },
        Step { label: "Call with the device id and token", run: call },
        Step { label: "Send a token that differs from the session's copy", run: mismatch },
        Step { label: "Let every server session time out", run: expire_all_sessions },
        Step { label: "Call again: the token is re-attached from the database", run: reattached },
        Step { label: "An attacker who only knows the device id", run: stranger_gets_in },
        Step { label: "Hardened: log in on another device", run: login_hardened },
        Step { label: "The attacker tries that device's id", run: stranger_refused },
    ],
    extras: &[],
};

fn login_as_written(lab: Lab) -> StepFuture {
    boxed(async move {
        let login = lab.device_login("my-phone-1234", DeviceMode::AsWritten).await?;
        let token = lab.recall(|m| m.device_token.clone());
        if token != "my-phone-1234" {
            return Err(format!("as written, the token should be the device id, got {token}"));
        }
        Ok(format!(
            "200: device token = device id = {token}; it never expires ({})",
            login.status()
        ))
    })
}

fn call(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_status(&lab.device_me().await, 200)?;
        Ok("200: the token matches the session's copy".to_owned())
    })
}

fn mismatch(lab: Lab) -> StepFuture {
    boxed(async move {
        let id = lab.recall(|m| m.device_id.clone());
        let wrong = DeviceCredentials { id, token: "wrong".to_owned(), key: None };
        let response = api::device_me(&lab.client, &wrong).await;
        expect_reason(&response, Reason::DeviceTokenMismatch)?;
        Ok("401 device_token_mismatch: a live session is not enough, the token must match"
            .to_owned())
    })
}

/// Every server session of every user times out at once (chapter 6 and its comparator use it too).
pub(super) fn expire_all_sessions(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = api::expire_sessions(&lab.client).await;
        let expired = expect_status(&response, 200)?.expired;
        let expired = i64::try_from(expired).unwrap_or(i64::MAX);
        Ok(format!("{} dropped", plural(expired, "server session", "server sessions")))
    })
}

fn reattached(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.device_me().await;
        let me = expect_status(&response, 200)?;
        if me.header("x-session-renewed") != Some("1") {
            return Err("200, but no x-session-renewed: 1".to_owned());
        }
        Ok(format!(
            "200 with x-session-renewed: 1 — found in the database, new session attached, no password ({})",
            statements(&me.response)
        ))
    })
}

fn stranger_gets_in(lab: Lab) -> StepFuture {
    boxed(async move {
        let id = lab.recall(|m| m.device_id.clone());
        expect_status(&lab.device_me_as_attacker(&id).await, 200)?;
        Ok("200 — the attacker is in: as written, knowing the device id is being the user"
            .to_owned())
    })
}

fn login_hardened(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.device_login("my-laptop-5678", DeviceMode::Hardened).await?;
        let token = lab.recall(|m| m.device_token.clone());
        Ok(format!(
            "200: a random secret of {}, stored only as a hash",
            plural(token.len() as i64, "hex character", "hex characters")
        ))
    })
}

fn stranger_refused(lab: Lab) -> StepFuture {
    boxed(async move {
        let id = lab.recall(|m| m.device_id.clone());
        let response = lab.device_me_as_attacker(&id).await;
        expect_reason(&response, Reason::DeviceUnknown)?;
        Ok("401 device_unknown: the device id alone gets nothing".to_owned())
    })
}
