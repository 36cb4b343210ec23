//! What every service of this workspace does the same way, so that each does it once:
//! layered configuration ([`config`]), logs and metrics ([`telemetry`]), the context around
//! every request ([`request`]), database connections ([`db`]), OpenAPI documents ([`openapi`])
//! and serving until stopped ([`serve`]). A service keeps only what is its own: its settings,
//! domain, storage and operations.

pub mod config;
pub mod db;
pub mod openapi;
pub mod request;
pub mod serve;
pub mod telemetry;
