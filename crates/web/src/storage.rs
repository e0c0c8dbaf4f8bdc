//! The browser's localStorage, where the device panel keeps its device id and token, as a mobile
//! app would keep them on the device. (The session and refresh schemes keep theirs in HttpOnly
//! cookies instead, out of JavaScript's reach: the contrast is part of the lesson.)

#[cfg(feature = "hydrate")]
fn local() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

#[cfg(feature = "hydrate")]
pub fn get(key: &str) -> Option<String> {
    local().and_then(|s| s.get_item(key).ok().flatten())
}

#[cfg(feature = "hydrate")]
pub fn set(key: &str, value: &str) {
    if let Some(s) = local() {
        let _ = s.set_item(key, value);
    }
}

#[cfg(feature = "hydrate")]
pub fn remove(key: &str) {
    if let Some(s) = local() {
        let _ = s.remove_item(key);
    }
}

// The server renders the page without a browser; these are never called there.
#[cfg(not(feature = "hydrate"))]
pub fn get(_key: &str) -> Option<String> {
    None
}

#[cfg(not(feature = "hydrate"))]
pub fn set(_key: &str, _value: &str) {}

#[cfg(not(feature = "hydrate"))]
pub fn remove(_key: &str) {}
