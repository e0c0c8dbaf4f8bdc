//! sea-orm entities, one module per table created in `migrations/`.

pub mod users;
