//! API tests: the real server on port 0, a fresh database with the real migrations, real HTTP, and
//! a clock that moves only when the test moves it.
//!
//! Every test of a backend's behaviour is generated twice by `backend_test!`: `…::sqlite`, and
//! `…::postgres`, which needs `TEST_DATABASE_URL` (see `helpers.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod accounts;
mod clock;
mod connections;
mod cost;
mod csp;
mod db_faults;
mod dbsc;
mod device;
mod dpop;
#[path = "../support/dpop_client.rs"]
mod dpop_client;
mod instances;
mod keys;
mod lab;
mod layers;
mod oauth;
mod openapi;
mod orders;
mod platform;
#[path = "../support/redis_prefix.rs"]
mod redis_prefix;
mod redis_sessions;
#[path = "../support/scratch_database.rs"]
mod scratch_database;
mod session;
mod signout;
mod throttle;
mod walkthrough;
