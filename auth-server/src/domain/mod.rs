//! Domain types and rules of the authorization server: no web framework, no database.

mod api;
mod client;
mod scope;
mod token;
mod user;

pub use api::{Api, normalize_resource};
pub use client::{
    Audience, Client, ClientAuthentication, ClientId, ClientKeys, GrantType, InvalidClaims,
    InvalidName, NewClient, StaticClaims, TOKEN_EXCHANGE,
};
pub use scope::{InvalidScope, Scope, ScopeSet};
pub use token::{
    AccessTokenClaims, Actor, Confirmation, Target, TokenRequestTarget, choose_audience,
    choose_exchange_target,
};
pub use user::{User, Username};
