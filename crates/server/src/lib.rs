// The lab pages' view types are deep; rendering them on the server needs more than the default.
#![recursion_limit = "512"]
//! The tokenlab server: HTTP API, sessions, persistence, and the server-rendered lab page.
//!
//! Token *rules* live in `tokenlab-core`; this crate applies them to requests and rows.

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod csp;
pub mod db;
pub mod demo_clock;
pub mod demo_events;
pub mod entities;
pub mod error;
pub mod exactly_once;
pub mod extract;
pub mod guard;
pub mod hasher;
pub mod keys;
pub mod middleware;
pub mod observe;
pub mod policy;
pub mod proof_cli;
pub mod queries;
pub mod secrets;
pub mod serve;
pub mod sessions;
pub mod slow_network;
pub mod sqlite_inline;
pub mod state;

pub use app::Application;
pub use config::Settings;
