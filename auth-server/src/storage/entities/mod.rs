//! sea-orm entities. Times are whole seconds since the Unix epoch (BIGINT on both backends).

pub mod client;
pub mod signing_key;
