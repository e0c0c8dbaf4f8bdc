//! Chapter 1: why tokens. A password is checked once, slowly; from then on the client is
//! recognised by a cheap lookup, or by a signature and no session at all.

use super::{Chapter, Step};
use crate::api;
use crate::lab::{Lab, StepFuture, boxed, expect_status, statements};
use crate::server_clock::format_lifetime;

pub(super) static CHAPTER: Chapter = Chapter {
    key: "why",
    title: "1. Why tokens",
    claims: "C1, C2, C3",
    explain: &[
        "Checking a name and password is deliberately slow: the password hash (argon2 here) is built to cost time and memory, so that a stolen table of hashes is hard to crack. Doing that on every request would make the server pay that cost every time.",
        "So the server checks the password once and hands back a token. From then on the client shows the token, and the server recognises it with a cheap lookup, or, for a signed token, with no session lookup at all.",
    ],
    look_for: "In the timeline, each request's duration and its x-tokenlab-db-queries header (how many database statements it cost): the logins pay for argon2, the calls after them do not. The password travels only in the two logins. `just bench` measures the same four ways of being recognised.",
    steps: &[
        Step { label: "Log in with name and password", run: login },
        Step { label: "Call again with the session cookie only", run: session_call },
        Step { label: "Get an access token (password grant)", run: token },
        Step { label: "Call with the access token only", run: bearer_call },
    ],
    extras: &[],
};

fn login(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = lab.session_login().await;
        let login = expect_status(&response, 200)?;
        Ok(format!(
            "200: password checked once; the session id came back as an HttpOnly cookie ({})",
            statements(&login.response)
        ))
    })
}

fn session_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let response = api::session_me(&lab.client).await;
        let me = expect_status(&response, 200)?;
        Ok(format!(
            "200 without a password: a session lookup and the idle timer's update ({})",
            statements(&me.response)
        ))
    })
}

fn token(lab: Lab) -> StepFuture {
    boxed(async move {
        let tokens = lab.password_grant().await?;
        let access_seconds = lab.recall(|m| m.access_lifetime_seconds);
        Ok(format!(
            "200: an access token for {} and a refresh token ({})",
            format_lifetime(access_seconds),
            statements(&tokens.response)
        ))
    })
}

fn bearer_call(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        let response = lab.jwt_me(&access).await;
        let me = expect_status(&response, 200)?;
        Ok(format!(
            "200: the signature proves the token; no session, no lookup ({})",
            statements(&me.response)
        ))
    })
}
