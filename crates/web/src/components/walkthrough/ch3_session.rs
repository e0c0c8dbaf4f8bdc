//! Chapter 3: the session id as the token. Nothing to store but a cookie, and nothing to do when
//! the session expires but log in again.

use tokenlab_core::Reason;

use super::{Chapter, Step};
use crate::api;
use crate::lab::{Lab, StepFuture, boxed, expect_reason, expect_status};

pub(super) static CHAPTER: Chapter = Chapter {
    key: "session",
    title: "3. Session id as token",
    claims: "C6, C7",
    explain: &[
        "The simplest scheme: log in with name and password, and the server's session id is the token. The browser keeps it in an HttpOnly cookie and sends it with every request; nothing else needs storing.",
        "Its drawback, as the article says: when the session expires, the only way back is to log in again.",
    ],
    look_for: "The idle expiry in the server state moving forward with each call, then session_expired, once, followed by not_logged_in.",
    steps: &[
        Step { label: "Log in", run: login },
        Step { label: "Call with the cookie", run: call },
        Step { label: "31 minutes pass on the server's clock", run: idle_31_minutes },
        Step { label: "Call again", run: expired_call },
        Step { label: "And again", run: gone_call },
    ],
    extras: &[],
};

/// A login with name and password; the session id comes back as a cookie (chapter 4 starts with
/// it too).
pub(super) fn login(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.session_login().await;
        let masked = &expect_status(&response, 200)?.session.id_masked;
        Ok(format!("200: session {masked}, idle for 30 min at most, 12 h in all"))
    })
}

fn call(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_status(&api::session_me(&lab.client).await, 200)?;
        Ok("200: the cookie alone; the idle expiry moved forward".to_owned())
    })
}

fn idle_31_minutes(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.advance_clock(31 * 60).await?;
        Ok("the server's clock is 31 minutes later".to_owned())
    })
}

fn expired_call(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_reason(&api::session_me(&lab.client).await, Reason::SessionExpired)?;
        Ok("401 session_expired: idle for longer than 30 minutes".to_owned())
    })
}

fn gone_call(lab: Lab) -> StepFuture {
    boxed(async move {
        expect_reason(&api::session_me(&lab.client).await, Reason::NotLoggedIn)?;
        Ok("401 not_logged_in: the session is gone; only a new login helps (C7)".to_owned())
    })
}
