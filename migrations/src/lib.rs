//! The schema, as ordered migrations. The server runs them at start, and the API tests run the same
//! migrations against a fresh database, so the tests always see the schema production sees.
//!
//! Timestamps are stored as Unix seconds (`BIGINT`): both SQLite and PostgreSQL compare integers the
//! same way, which keeps expiry checks inside SQL conditions portable.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_users;
mod m20261127_000002_sessions_and_login_throttle;
mod m20261127_000003_orders;
mod m20261127_000004_devices;
mod m20261127_000005_bearer_tokens;
mod m20261127_000006_demo_settings;
mod m20261127_000007_demo_counters;
mod m20261201_000008_session_owners;
mod m20261201_000009_login_throttle_pending;
mod m20261201_000010_demo_clock;
mod m20261202_000011_dpop;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_users::Migration),
            Box::new(m20261127_000002_sessions_and_login_throttle::Migration),
            Box::new(m20261127_000003_orders::Migration),
            Box::new(m20261127_000004_devices::Migration),
            Box::new(m20261127_000005_bearer_tokens::Migration),
            Box::new(m20261127_000006_demo_settings::Migration),
            Box::new(m20261127_000007_demo_counters::Migration),
            Box::new(m20261201_000008_session_owners::Migration),
            Box::new(m20261201_000009_login_throttle_pending::Migration),
            Box::new(m20261201_000010_demo_clock::Migration),
            Box::new(m20261202_000011_dpop::Migration),
        ]
    }
}
