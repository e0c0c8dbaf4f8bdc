//! Article §4: a short-lived access token and a longer-lived refresh token.
//!
//! The access token is a signed JWT the server can check without a lookup; the refresh token is an
//! opaque secret the server remembers (hashed), rotates at every use, and revokes as a family when
//! a rotated one is presented again (RFC 9700 §4.14.2).

use time::Duration;

use crate::Timestamp;

#[cfg(feature = "jwt")]
mod verify;
#[cfg(feature = "jwt")]
pub use verify::{AUDIENCE, TokenRejection, verify_access_token};

/// Lifetimes, by name, so the lab can put the article's numbers next to current advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    pub name: &'static str,
    /// Where the numbers come from, in words the lab shows next to the preset.
    pub source: &'static str,
    pub access_lifetime: Duration,
    /// A refresh token unused for this long expires, however young its family.
    pub refresh_idle: Duration,
    /// No refresh token of a family outlives this, counted from the login that started it.
    pub refresh_absolute: Duration,
}

impl TokenPolicy {
    /// The article's example: access one month, refresh two months.
    pub const ARTICLE: TokenPolicy = TokenPolicy {
        name: "article",
        source: "the article's example: access one month, refresh two months",
        access_lifetime: Duration::days(30),
        refresh_idle: Duration::days(60),
        refresh_absolute: Duration::days(60),
    };
    /// Current practice: an access token short enough that revocation lists are unnecessary.
    pub const RECOMMENDED: TokenPolicy = TokenPolicy {
        name: "recommended",
        source: "tokenlab's advice: short access tokens, rotating refresh tokens with idle and absolute limits (RFC 9700 §4.14)",
        access_lifetime: Duration::minutes(15),
        refresh_idle: Duration::days(14),
        refresh_absolute: Duration::days(60),
    };

    /// Modelled on Keycloak's realm defaults: access token lifespan 5 minutes; the refresh token
    /// lives as long as the SSO session, 30 minutes idle and 10 hours at most.
    pub const KEYCLOAK: TokenPolicy = TokenPolicy {
        name: "keycloak",
        source: "modelled on Keycloak's documented realm defaults: access token lifespan 5 min, SSO session idle 30 min, SSO session max 10 h",
        access_lifetime: Duration::minutes(5),
        refresh_idle: Duration::minutes(30),
        refresh_absolute: Duration::hours(10),
    };
    /// Modelled on Auth0's defaults for an API (token expiration 86 400 s) with refresh-token
    /// rotation (absolute lifetime 2 592 000 s, inactivity lifetime 1 296 000 s).
    pub const AUTH0: TokenPolicy = TokenPolicy {
        name: "auth0",
        source: "modelled on Auth0's documented defaults: API access token 24 h; rotating refresh token 15 days idle, 30 days absolute",
        access_lifetime: Duration::hours(24),
        refresh_idle: Duration::days(15),
        refresh_absolute: Duration::days(30),
    };
    /// Modelled on Amazon Cognito's app-client defaults: access token 60 minutes, refresh token
    /// 30 days with no idle limit of its own.
    pub const COGNITO: TokenPolicy = TokenPolicy {
        name: "cognito",
        source: "modelled on Amazon Cognito's documented app-client defaults: access token 60 min, refresh token 30 days",
        access_lifetime: Duration::minutes(60),
        refresh_idle: Duration::days(30),
        refresh_absolute: Duration::days(30),
    };

    /// Every preset the lab can switch between, the article's first.
    pub const PRESETS: [TokenPolicy; 5] =
        [Self::ARTICLE, Self::RECOMMENDED, Self::KEYCLOAK, Self::AUTH0, Self::COGNITO];

    pub fn by_name(name: &str) -> Option<TokenPolicy> {
        Self::PRESETS.into_iter().find(|p| p.name == name)
    }

    /// When a refresh token issued at `issued_at`, in a family started at `family_started_at`,
    /// stops being usable.
    pub fn refresh_expires_at(
        &self,
        issued_at: Timestamp,
        family_started_at: Timestamp,
    ) -> Timestamp {
        self.refresh_expires_within(issued_at, family_started_at + self.refresh_absolute)
    }

    /// When an access token issued at `issued_at` expires: its own lifetime, but never after the
    /// refresh token issued with it. No token outlives the login it came from, even when a preset
    /// with longer access tokens is chosen after that login.
    pub fn access_expires_at(
        &self,
        issued_at: Timestamp,
        refresh_expires_at: Timestamp,
    ) -> Timestamp {
        (issued_at + self.access_lifetime).min(refresh_expires_at)
    }

    /// When a refresh token issued at `issued_at` stops being usable, in a family whose absolute
    /// end is already fixed.
    pub fn refresh_expires_within(
        &self,
        issued_at: Timestamp,
        family_expires_at: Timestamp,
    ) -> Timestamp {
        (issued_at + self.refresh_idle).min(family_expires_at)
    }
}

/// Clock skew tolerated between servers when checking `exp` and `nbf` (RFC 7519 §4.1.4 allows
/// "a few minutes"; tokenlab keeps it small and explicit).
pub const LEEWAY: Duration = Duration::seconds(5);

/// How long the parent of the current refresh token is still honoured, returning the same child,
/// for a client that lost the response to its refresh.
pub const REFRESH_GRACE: Duration = Duration::seconds(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeClaimError {
    Expired,
    NotYetValid,
    IssuedInTheFuture,
}

/// The time claims of an access token, checked on the injected clock (so the demo clock can expire
/// tokens; the JWT library would read the system time).
pub fn check_time_claims(
    iat: i64,
    nbf: i64,
    exp: i64,
    now: Timestamp,
) -> Result<(), TimeClaimError> {
    let now = now.unix_timestamp();
    let leeway = LEEWAY.whole_seconds();
    // Saturating: the claims are whatever a signed token says, the far ends of i64 included.
    if now >= exp.saturating_add(leeway) {
        Err(TimeClaimError::Expired)
    } else if now.saturating_add(leeway) < nbf {
        Err(TimeClaimError::NotYetValid)
    } else if now.saturating_add(leeway) < iat {
        Err(TimeClaimError::IssuedInTheFuture)
    } else {
        Ok(())
    }
}

/// What a refresh that succeeded did, sent back as [`RefreshOutcome::HEADER`]: of any number of
/// concurrent refreshes of one token exactly one answers `rotated`; the others, inside the grace
/// window, answer `repeated` with that same child. Lets a client (and the lab's race console) count
/// rotations from the answers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// This request exchanged the token for its child.
    Rotated,
    /// Another request had just done so: this one was given the same child again.
    Repeated,
}

impl RefreshOutcome {
    pub const HEADER: &'static str = "x-tokenlab-refresh";

    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Rotated => "rotated",
            RefreshOutcome::Repeated => "repeated",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [RefreshOutcome::Rotated, RefreshOutcome::Repeated]
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
    }
}

/// What a presented refresh token that was already rotated means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotatedRefresh {
    /// Its child is still current and the rotation was moments ago: the client lost the response.
    /// Answer with the same child.
    Retry,
    /// Anything else: a copy is being replayed. Revoke the family.
    Reuse,
}

pub fn rotated_refresh(
    rotated_at: Timestamp,
    child_is_current: bool,
    now: Timestamp,
) -> RotatedRefresh {
    if child_is_current && now < rotated_at + REFRESH_GRACE {
        RotatedRefresh::Retry
    } else {
        RotatedRefresh::Reuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn policies() {
        let cases = [
            ("article", Some((Duration::days(30), Duration::days(60)))),
            ("recommended", Some((Duration::minutes(15), Duration::days(60)))),
            ("keycloak", Some((Duration::minutes(5), Duration::hours(10)))),
            ("auth0", Some((Duration::hours(24), Duration::days(30)))),
            ("cognito", Some((Duration::minutes(60), Duration::days(30)))),
            ("none", None),
        ];
        for (name, expected) in cases {
            let got = TokenPolicy::by_name(name).map(|p| (p.access_lifetime, p.refresh_absolute));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn every_preset_is_coherent() {
        for p in TokenPolicy::PRESETS {
            assert!(p.access_lifetime < p.refresh_idle, "{}: access outlives refresh", p.name);
            assert!(p.refresh_idle <= p.refresh_absolute, "{}: idle beyond absolute", p.name);
            assert!(!p.source.is_empty(), "{}", p.name);
        }
    }

    #[test]
    fn refresh_expiry_is_the_earlier_of_idle_and_absolute() {
        let p = TokenPolicy::RECOMMENDED;
        let cases = [
            (T0, T0, T0 + Duration::days(14)),
            (T0 + Duration::days(50), T0, T0 + Duration::days(60)),
        ];
        for (issued, started, expected) in cases {
            assert_eq!(p.refresh_expires_at(issued, started), expected);
        }
        assert_eq!(TokenPolicy::ARTICLE.refresh_expires_at(T0, T0), T0 + Duration::days(60));
    }

    #[test]
    fn access_tokens_never_outlive_their_refresh_token() {
        let p = TokenPolicy::ARTICLE;
        let cases = [
            (T0 + Duration::days(60), T0 + Duration::days(30)),
            (T0 + Duration::hours(10), T0 + Duration::hours(10)),
            (T0, T0),
        ];
        for (refresh_end, expected) in cases {
            assert_eq!(p.access_expires_at(T0, refresh_end), expected, "{refresh_end}");
        }
    }

    #[test]
    fn time_claims() {
        let (iat, exp) = (T0.unix_timestamp(), T0.unix_timestamp() + 900);
        let cases = [
            (Duration::ZERO, Ok(())),
            (Duration::seconds(904), Ok(())),
            (Duration::seconds(905), Err(TimeClaimError::Expired)),
            (Duration::seconds(-5), Ok(())),
            (Duration::seconds(-6), Err(TimeClaimError::NotYetValid)),
        ];
        for (offset, expected) in cases {
            assert_eq!(check_time_claims(iat, iat, exp, T0 + offset), expected, "{offset}");
        }
        assert_eq!(
            check_time_claims(iat + 60, iat, exp, T0),
            Err(TimeClaimError::IssuedInTheFuture)
        );
        // The far ends of i64, as a signed token may carry them, are judged, not overflowed.
        let extremes = [
            (i64::MIN, i64::MIN, i64::MAX, Ok(())),
            (iat, iat, i64::MIN, Err(TimeClaimError::Expired)),
            (iat, i64::MAX, exp, Err(TimeClaimError::NotYetValid)),
            (i64::MAX, iat, exp, Err(TimeClaimError::IssuedInTheFuture)),
        ];
        for (iat, nbf, exp, expected) in extremes {
            assert_eq!(check_time_claims(iat, nbf, exp, T0), expected, "{iat} {nbf} {exp}");
        }
    }

    #[test]
    fn refresh_outcomes_round_trip_through_their_header_value() {
        let cases = [
            ("rotated", Some(RefreshOutcome::Rotated)),
            ("repeated", Some(RefreshOutcome::Repeated)),
            ("Rotated", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(RefreshOutcome::parse(value), expected, "{value:?}");
            if let Some(outcome) = expected {
                assert_eq!(outcome.as_str(), value);
            }
        }
    }

    #[test]
    fn rotated_refresh_tokens() {
        let cases = [
            (true, Duration::seconds(9), RotatedRefresh::Retry),
            (true, Duration::seconds(10), RotatedRefresh::Reuse),
            (false, Duration::seconds(1), RotatedRefresh::Reuse),
        ];
        for (current, after, expected) in cases {
            assert_eq!(rotated_refresh(T0, current, T0 + after), expected, "{current} {after}");
        }
    }
}
