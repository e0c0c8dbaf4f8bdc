//! Chapter 5: expiry and refresh. A short-lived access token, a refresh token that replaces both
//! at every use, a replayed refresh token that revokes its whole family, and a refresh token that
//! outlives nobody — under whichever token-policy preset the learner picked.

use tokenlab_core::Reason;

use super::{Chapter, Extra, Step};
use crate::lab::{Lab, StepFuture, boxed, expect_reason, expect_status};
use crate::server_clock::{format_lifetime, format_remaining};

pub(super) static CHAPTER: Chapter = Chapter {
    key: "refresh",
    title: "5. Expiry and refresh",
    claims: "C9",
    explain: &[
        "An access token is checked by its signature alone, so the server cannot take it back: its short life is the only limit. A refresh token, which the server does remember, gets a new access token when the old one expires.",
        "Each refresh returns a new access token, a new refresh token and expires_in; the client must replace what it stored. Once the refresh token's own life is over, the user logs in again.",
        "The steps follow the preset chosen below: switch it and run the chapter again to compare the article's month-long tokens with shorter ones.",
    ],
    look_for: "token_expired after the clock jump; in the server state, the family's chain: rotated, current — and after the replay, the whole family revoked as reused.",
    steps: &[
        Step { label: "Log in: access + refresh tokens", run: login },
        Step { label: "Use the access token", run: use_access },
        Step { label: "Let the access token expire", run: pass_access_life },
        Step { label: "Use it again", run: access_expired },
        Step { label: "Refresh: replace both stored tokens", run: rotate },
        Step { label: "Use the new access token", run: use_access },
        Step { label: "Someone replays the old refresh token, 11 s later", run: replay },
        Step { label: "The real client's refresh token is revoked too", run: family_revoked },
        Step { label: "Log in again, then stay away past the refresh token's life", run: outlived },
    ],
    extras: &[Extra::PresetPicker],
};

fn login(lab: Lab) -> StepFuture {
    boxed(async move {
        let name = lab.policy().await?.name;
        lab.password_grant().await?;
        let (access, refresh) =
            lab.recall(|m| (m.access_lifetime_seconds, m.refresh_lifetime_seconds));
        // The seconds are the answer's expires_in and refresh_expires_in, as a client reads them.
        Ok(format!(
            "preset {name}: access for {access} s, refresh for {refresh} s ({} and {})",
            format_lifetime(access),
            format_lifetime(refresh)
        ))
    })
}

fn use_access(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        expect_status(&lab.jwt_me(&access).await, 200)?;
        Ok("200: the signature and the expiry are all the server checks".to_owned())
    })
}

fn pass_access_life(lab: Lab) -> StepFuture {
    boxed(async move {
        let access_seconds = lab.recall(|m| m.access_lifetime_seconds);
        if access_seconds <= 0 {
            return Err("no access token yet: log in first".to_owned());
        }
        // A minute beyond, to clear the 5 s leeway for clock skew.
        lab.advance_clock(access_seconds + 60).await?;
        Ok(format!(
            "the clock moved {} s: the access token's {} and a minute",
            access_seconds + 60,
            format_lifetime(access_seconds)
        ))
    })
}

fn access_expired(lab: Lab) -> StepFuture {
    boxed(async move {
        let access = lab.recall(|m| m.access_token.clone());
        expect_reason(&lab.jwt_me(&access).await, Reason::TokenExpired)?;
        Ok("401 token_expired".to_owned())
    })
}

fn rotate(lab: Lab) -> StepFuture {
    boxed(async move {
        let refresh = lab.recall(|m| m.refresh_token.clone());
        let response = lab.refresh_with(&refresh).await;
        let tokens = expect_status(&response, 200)?;
        lab.keep_tokens(tokens)?;
        let expires_in = tokens.expires_in;
        Ok(format!(
            "200: new access token, new refresh token, expires_in {} — both stored ones replaced",
            format_lifetime(expires_in)
        ))
    })
}

fn replay(lab: Lab) -> StepFuture {
    boxed(async move {
        // Past the 10 s in which a lost response may be retried with the same token.
        lab.advance_clock(11).await?;
        let stolen = lab.recall(|m| m.spent_refresh_token.clone());
        expect_reason(&lab.refresh_as_attacker(&stolen).await, Reason::RefreshReused)?;
        Ok("400 refresh_reused: a spent token came back, so the whole family is revoked".to_owned())
    })
}

fn family_revoked(lab: Lab) -> StepFuture {
    boxed(async move {
        let current = lab.recall(|m| m.refresh_token.clone());
        expect_reason(&lab.refresh_with(&current).await, Reason::RefreshRevoked)?;
        Ok("400 refresh_revoked: victim and thief alike must log in again".to_owned())
    })
}

fn outlived(lab: Lab) -> StepFuture {
    boxed(async move {
        lab.password_grant().await?;
        let refresh_seconds = lab.recall(|m| m.refresh_lifetime_seconds);
        lab.advance_clock(refresh_seconds + 60).await?;
        let current = lab.recall(|m| m.refresh_token.clone());
        expect_reason(&lab.refresh_with(&current).await, Reason::RefreshExpired)?;
        Ok(format!(
            "400 refresh_expired after {} away: log in again",
            format_remaining(refresh_seconds + 60)
        ))
    })
}
