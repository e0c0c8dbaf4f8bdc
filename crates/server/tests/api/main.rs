//! API tests: the real server on port 0, a fresh database with the real migrations, real HTTP.
//!
//! Every test runs on SQLite, and again on PostgreSQL when `TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod clock;
mod device;
mod lab;
mod oauth;
mod orders;
mod platform;
mod session;
mod signout;
mod walkthrough;
