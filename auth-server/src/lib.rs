//! The auth-server: an OAuth 2.0 authorization server that issues RFC 9068 JWT access tokens.
//!
//! Layers: `domain` (rules, no framework types) ← `grants` (token issuance use cases) ←
//! `api` (poem-openapi). `storage` (sea-orm) and `crypto` (argon2, josekit) sit beside them.

pub mod api;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod grants;
pub mod keys;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod throttle;

pub use config::Settings;
pub use startup::Application;
