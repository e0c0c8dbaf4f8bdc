//! sea-orm entities, one module per table created in `migrations/`.

pub mod sessions;
pub mod users;
