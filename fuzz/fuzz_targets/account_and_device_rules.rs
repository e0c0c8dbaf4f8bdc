//! Usernames, passwords, device ids and device modes as a client sends them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenlab_core::account::{
    PASSWORD_MAX_CHARS, USERNAME_MAX_CHARS, validate_password, validate_username,
};
use tokenlab_core::device::{DEVICE_ID_MAX_CHARS, DeviceMode, validate_device_id};

fuzz_target!(|raw: &str| {
    if let Ok(name) = validate_username(raw) {
        assert!(name.as_str().chars().count() <= USERNAME_MAX_CHARS);
        // A valid name is stored as sent, and is valid again.
        assert!(validate_username(name.as_str()).is_ok());
    }
    if validate_password(raw).is_ok() {
        assert!(raw.chars().count() <= PASSWORD_MAX_CHARS);
    }
    if validate_device_id(raw).is_ok() {
        assert!(raw.chars().count() <= DEVICE_ID_MAX_CHARS);
        assert!(raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
    if let Some(mode) = DeviceMode::parse(raw) {
        assert_eq!(mode.as_str(), raw);
    }
});
