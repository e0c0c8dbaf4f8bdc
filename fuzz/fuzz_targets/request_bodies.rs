//! The JSON request bodies core declares, as the server reads them: an order, a clock change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenlab_core::submit::validate_order;
use tokenlab_core::wire::{ClockChange, NewOrder};

fuzz_target!(|body: &[u8]| {
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
