//! What the lab page's scheme panels hold, shared with the panels that act on all of a user's
//! sign-ins at once (the sessions list): the access token the access + refresh panel keeps in
//! memory, the device panel's id and token (in localStorage, as that panel keeps them), and a
//! counter that moves whenever a panel signs in or out, so that the list can follow.
//!
//! Provided by the lab page only; the panels also work without it (`use_context` → `None`).

use leptos::prelude::*;

use tokenlab_core::device::DeviceMode;

use crate::api::DeviceCredentials;
use crate::components::device::{DEVICE_ID_KEY, DEVICE_MODE_KEY, TOKEN_KEY};
use crate::storage;

#[derive(Clone, Copy)]
pub struct PageLogins {
    /// The access + refresh panel's access token: in this page's memory only, never in storage.
    pub access_token: RwSignal<Option<String>>,
    /// Whether that token is bound to this browser's key (DPoP): it is then sent with a proof.
    pub access_bound: RwSignal<bool>,
    changes: RwSignal<u64>,
}

impl Default for PageLogins {
    fn default() -> Self {
        Self::new()
    }
}

impl PageLogins {
    pub fn new() -> Self {
        Self {
            access_token: RwSignal::new(None),
            access_bound: RwSignal::new(false),
            changes: RwSignal::new(0),
        }
    }

    /// A panel signed in or out (or ended a sign-in): whatever lists sign-ins should look again.
    pub fn changed(&self) {
        self.changes.update(|n| *n += 1);
    }

    /// Subscribes the calling effect to [`PageLogins::changed`].
    pub fn track(&self) -> u64 {
        self.changes.get()
    }
}

/// Tells the page's sign-in lists that something changed, when the page has them.
pub fn notify(logins: Option<PageLogins>) {
    if let Some(logins) = logins {
        logins.changed();
    }
}

/// The device panel's credential as it sends it: `X-Device-Id` and `X-Device-Token` (a bound
/// device: its key), or `None` while this page holds no device sign-in.
pub fn device_credentials() -> Option<DeviceCredentials> {
    let id = storage::get(DEVICE_ID_KEY).unwrap_or_default();
    if storage::get(DEVICE_MODE_KEY).as_deref() == Some(DeviceMode::Bound.as_str()) {
        let key = crate::dpop::loaded_key()?;
        return Some(DeviceCredentials { id, token: String::new(), key: Some(key) });
    }
    let token = storage::get(TOKEN_KEY).filter(|t| !t.is_empty())?;
    Some(DeviceCredentials { id, token, key: None })
}
