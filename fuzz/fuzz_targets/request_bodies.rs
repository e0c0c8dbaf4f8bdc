//! The JSON request bodies, as the server reads them (`ApiJson`): the login and account bodies,
//! then the rules their fields are judged by; an order; a clock change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret as _;
use tokenlab_core::account::{validate_password, validate_username};
use tokenlab_core::device::validate_device_id;
use tokenlab_core::submit::validate_order;
use tokenlab_core::wire::credentials::{DeviceLogin, LoginRequest, NewAccount, PasswordChange};
use tokenlab_core::wire::{ClockChange, NewOrder};

fuzz_target!(|body: &[u8]| {
    if let Ok(login) = serde_json::from_slice::<LoginRequest>(body) {
        let _ = validate_username(&login.username);
        let _ = validate_password(login.password.expose_secret());
    }
    if let Ok(account) = serde_json::from_slice::<NewAccount>(body) {
        let _ = validate_username(&account.username);
        let _ = validate_password(account.password.expose_secret());
    }
    if let Ok(change) = serde_json::from_slice::<PasswordChange>(body) {
        let _ = validate_password(change.current_password.expose_secret());
        let _ = validate_password(change.new_password.expose_secret());
    }
    if let Ok(device) = serde_json::from_slice::<DeviceLogin>(body) {
        let _ = validate_device_id(&device.device_id);
        // The mode read is one of the two the rule knows, written back as it was read.
        assert_eq!(
            tokenlab_core::device::DeviceMode::parse(device.mode.as_str()),
            Some(device.mode)
        );
    }
    if let Ok(order) = serde_json::from_slice::<NewOrder>(body) {
        // Whatever parses is judged by the rule without panicking, and survives a round trip.
        let _ = validate_order(&order.item, order.quantity);
        let again: NewOrder = serde_json::from_slice(&serde_json::to_vec(&order).unwrap()).unwrap();
        assert_eq!(again, order);
    }
    if let Ok(change) = serde_json::from_slice::<ClockChange>(body) {
        let again: ClockChange =
            serde_json::from_slice(&serde_json::to_vec(&change).unwrap()).unwrap();
        assert_eq!(again, change);
    }
});
