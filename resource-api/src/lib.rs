//! The players API: anyone reads the squad; writes need an access token from the
//! auth-server, checked against the issuer's published keys.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod scouting;
pub mod startup;
pub mod storage;

pub use config::Settings;
pub use startup::{Application, StartupError};
