//! End-to-end tests: the real services over real sockets, one binary (zero2prod style).

mod helpers;

mod apis;
mod cli;
mod client_policy;
mod discovery;
mod keys;
mod newcomer;
mod outage;
mod proxy;
mod refresh_race;
mod secretless;
mod slow_body;
mod spec;
mod sync;
mod throttle;
mod token;
mod token_exchange;
mod upgrade;
mod users;

mod api_helpers;
mod axum_example;
mod players;
mod verifier;
