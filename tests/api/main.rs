//! End-to-end tests: the real services over real sockets, one binary (zero2prod style).

mod helpers;

mod cli;
mod discovery;
mod keys;
mod spec;
mod token;
mod users;

mod api_helpers;
mod players;
mod verifier;
