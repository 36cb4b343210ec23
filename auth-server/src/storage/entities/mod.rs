//! sea-orm entities. Times are whole seconds since the Unix epoch (BIGINT on both backends).

pub mod api;
pub mod change;
pub mod client;
pub mod refresh_chain;
pub mod refresh_token;
pub mod revoked_access_token;
pub mod signing_key;
pub mod used_jti;
pub mod user;
