//! sea-orm entities, one module per table created in `migrations/`.

pub mod devices;
pub mod form_tokens;
pub mod idempotency_keys;
pub mod orders;
pub mod sessions;
pub mod users;
