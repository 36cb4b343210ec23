//! The auth-server: an OAuth 2.0 authorization server that issues RFC 9068 JWT access tokens.
//!
//! Layers, inner to outer: `domain` (rules, no framework, no database) ← `stores` (what the use
//! cases need from storage, as traits) ← `grants`, `keys`, `admin` (the use cases) ← `api`
//! (poem-openapi) and `cli` (clap). `storage` (sea-orm) implements `stores`; `crypto` (argon2,
//! josekit) sits beside the use cases; `startup` wires it all.

pub mod admin;
pub mod api;
pub mod availability;
pub mod cli;
pub mod client_cache;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod grants;
pub mod keys;
pub mod net;
pub mod shared;
pub mod startup;
pub mod storage;
pub mod stores;
pub mod throttle;

pub use config::Settings;
pub use startup::Application;
