//! Ending sign-ins: the kinds a user sees in their sessions list, the opaque ids that name them,
//! and how long each kind can outlive its revocation.
//!
//! A session-scheme login and a device end at once: the server holds their state and deletes it.
//! An access token is a signed statement the server cannot recall; tokenlab refuses one whose
//! refresh-token family was ended, and each instance learns of an ending within
//! [`ACCESS_REVOCATION_BOUND`] (a cached list refreshed from the database, never a query per
//! request).

use serde::{Deserialize, Serialize};
use time::Duration;

/// How long after a sign-out an access token of the ended login may still be accepted by an
/// instance that did not perform the sign-out itself.
pub const ACCESS_REVOCATION_BOUND: Duration = Duration::seconds(1);

/// How a sign-in in the sessions list was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// A server session whose id is the cookie (the article's second scheme).
    Session,
    /// A device and its token (the article's first scheme), with whatever server sessions it has.
    Device,
    /// A refresh-token family and the access tokens minted from it (the article's fourth section).
    Refresh,
}

impl Scheme {
    pub const ALL: [Scheme; 3] = [Scheme::Session, Scheme::Device, Scheme::Refresh];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Session => "session",
            Scheme::Device => "device",
            Scheme::Refresh => "refresh",
        }
    }

    const fn prefix(self) -> &'static str {
        match self {
            Scheme::Session => "s_",
            Scheme::Device => "d_",
            Scheme::Refresh => "r_",
        }
    }
}

/// The id of one entry of the sessions list: its scheme and the server's handle for it. The
/// handle is never a secret and never derived reversibly from one (a session id or a refresh
/// token), so the list can be shown, logged and sent without handing out a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub scheme: Scheme,
    pub handle: String,
}

/// Handles are short hex strings or decimal row ids; anything else is not ours.
const MAX_HANDLE_LEN: usize = 64;

impl SessionRef {
    pub fn new(scheme: Scheme, handle: impl Into<String>) -> Self {
        Self { scheme, handle: handle.into() }
    }

    /// The wire form, e.g. `s_3f9a…`.
    pub fn encode(&self) -> String {
        format!("{}{}", self.scheme.prefix(), self.handle)
    }

    /// `None` for anything this server could not have issued.
    pub fn parse(id: &str) -> Option<Self> {
        let scheme = Scheme::ALL.into_iter().find(|s| id.starts_with(s.prefix()))?;
        let handle = &id[scheme.prefix().len()..];
        let well_formed = !handle.is_empty()
            && handle.len() <= MAX_HANDLE_LEN
            && handle.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self::new(scheme, handle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ones_are_refused() {
        let cases: [(&str, Option<(Scheme, &str)>); 10] = [
            ("s_0af3", Some((Scheme::Session, "0af3"))),
            ("d_42", Some((Scheme::Device, "42"))),
            ("r_deadbeef", Some((Scheme::Refresh, "deadbeef"))),
            ("s_", None),
            ("x_42", None),
            ("42", None),
            ("d_-1", None),
            ("s_0AF3", None),
            ("r_dead beef", None),
            ("", None),
        ];
        for (id, expected) in cases {
            let parsed = SessionRef::parse(id);
            assert_eq!(
                parsed.clone().map(|r| (r.scheme, r.handle)),
                expected.map(|(s, h)| (s, h.to_owned())),
                "{id:?}"
            );
            if let Some(parsed) = parsed {
                assert_eq!(parsed.encode(), id);
            }
        }
        let too_long = format!("s_{}", "a".repeat(MAX_HANDLE_LEN + 1));
        assert_eq!(SessionRef::parse(&too_long), None);
    }

    #[test]
    fn schemes_serialize_as_their_names() {
        for scheme in Scheme::ALL {
            let json = serde_json::to_string(&scheme).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", scheme.as_str()));
        }
    }
}
