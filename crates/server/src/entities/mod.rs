//! sea-orm entities, one module per table created in `migrations/`.

pub mod demo_clock;
pub mod demo_settings;
pub mod devices;
pub mod dpop_proofs_seen;
pub mod form_tokens;
pub mod idempotency_keys;
pub mod orders;
pub mod refresh_families;
pub mod refresh_tokens;
pub mod server_keys;
pub mod sessions;
pub mod users;
